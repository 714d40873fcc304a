package process

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// ApplyConfig sets the flags of fs that the user did not set on the command
// line from the config file at path: a JSON or YAML mapping of flag name to
// value (a list for flags that repeat). A key for which known is false is
// an error that names what the keys are ("not a flag of any <what>"); a
// known key that fs does not have is ignored, so that one file can serve
// several programs or commands; the key "config" is refused. Its errors are
// UsageErrors.
func ApplyConfig(fs *pflag.FlagSet, path string, known func(name string) bool, what string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return Usagef("config: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return Usagef("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "config":
			return Usagef("config %s: key %q: a config file cannot name another config file", path, k)
		case !known(k):
			return Usagef("config %s: unknown key %q (not a flag of any %s)", path, k, what)
		}
		f := fs.Lookup(k)
		if f == nil || f.Changed {
			continue // another command's flag, or set on the command line
		}
		vals, err := configValues(values[k])
		if err != nil {
			return Usagef("config %s: key %q: %v", path, k, err)
		}
		for _, v := range vals {
			if err := f.Value.Set(v); err != nil {
				return Usagef("config %s: key %q: %v", path, k, err)
			}
		}
		f.Changed = true
	}
	return nil
}

// configValues turns one config file value into the strings given to the
// flag's Set: one for a scalar, one per element for a list.
func configValues(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, errors.New("no value")
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := configScalar(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := configScalar(x)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

func configScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time: // YAML reads a bare date as a timestamp
		return x.Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("value of type %T, want a string, number, boolean or a list of them", v)
}
