package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what `pipeline version` reports.
type versionInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`
	Go        string `json:"go"`
	Platform  string `json:"platform"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	Kafka     string `json:"kafka_client,omitempty"`
	KafkaFake string `json:"embedded_broker,omitempty"`
}

func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Long: `Print the module version of this build, the Go version and platform, the VCS
revision it was built from and its time (when known: 'make build' records
them, as does 'go build' in a git checkout unless -buildvcs=false) and the versions of the Kafka client and
of the embedded broker: one line on stdout, or with --json one object
{"module","version","go","platform","revision","time","modified","kafka_client","embedded_broker"}.`,
		Example: `  pipeline version
  pipeline version --json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			if asJSON {
				return writeJSON(a.stdout, v)
			}
			_, err := fmt.Fprintln(a.stdout, v.line())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the build information as JSON on stdout")
	return cmd
}

// What `make build` stamps with -ldflags -X (see the Makefile): the
// toolchain's own VCS stamp is missing when a build runs with
// -buildvcs=false or outside a checkout the go command can read, and
// always from `go run` and `go test`. A stamped value wins.
var (
	ldVersion  string // git describe --tags --always --dirty
	ldRevision string // the commit's full hash
	ldTime     string // the commit's time, RFC 3339
	ldModified string // "true" when the working tree had changes
)

// buildVersion reads the build information embedded by the Go toolchain
// and the linker flags.
func buildVersion() versionInfo {
	v := toolchainVersion()
	if ldVersion != "" {
		v.Version = ldVersion
	}
	if ldRevision != "" {
		v.Revision, v.Time, v.Modified = ldRevision, ldTime, ldModified == "true"
	}
	return v
}

// toolchainVersion reads the build information embedded by the Go toolchain.
func toolchainVersion() versionInfo {
	v := versionInfo{
		Module:   "github.com/domainflow/domainflow",
		Version:  "(devel)",
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/segmentio/kafka-go":
			v.Kafka = d.Version
		case "github.com/twmb/franz-go/pkg/kfake":
			v.KafkaFake = d.Version
		}
	}
	return v
}

// line is the one line `pipeline version` prints.
func (v versionInfo) line() string {
	line := fmt.Sprintf("pipeline %s (%s, %s, %s", v.Version, v.Module, v.Go, v.Platform)
	switch {
	case v.Revision != "":
		line += ", revision " + v.Revision
		if v.Modified {
			line += "+dirty"
		}
		if v.Time != "" {
			line += " of " + v.Time
		}
	case v.Version == "(devel)":
		line += ", revision unknown: build with 'make build' to record it"
	}
	return line + ")"
}
