package schemas

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
)

// Extra columns.
//
// A Document, Features or Routed record may hold columns beyond those of its
// kind's schema: columns a user stage added to its documents before they
// reach docs.raw (a language tag, a source id, a quality score). The
// featurization and routing stages carry them, row for row, onto
// docs.domain.<id>, and the archive sink writes them into its shards. An
// extra column must
//
//   - have a name that is none of the columns of the Document, Features and
//     Routed schemas (IsReservedColumn), and that no other column of the
//     record has;
//   - carry no field metadata under our namespace (keys starting with
//     MetaPrefix);
//   - be of a type the archive can write (ExtraTypeSupported): bool, the
//     signed and unsigned integers, float32, float64, utf8, large_utf8,
//     binary, large_binary, or a list or large list of one of these (lists of
//     lists included). It may be nullable.
//
// CheckSchema (and so DecodeRecords) refuses a Document, Features or Routed
// schema whose extra columns break the rules of names or metadata, and
// Extend (and so the featurization and routing stages) one whose extra
// columns are of another type, each with ReasonWrongSchema and a sentence
// naming the column. The schema-level metadata of a record belongs to its kind: it
// must keep MetaKind and MetaSchemaVersion, and other schema-level keys are
// not carried from one stage to the next; what describes a column goes into
// that column's field metadata, which travels with it.

// MetaPrefix starts every metadata key of ours, in schemas and in fields.
const MetaPrefix = "domainflow."

// reserved holds the names of the columns of the Document, Features and
// Routed schemas, which extra columns cannot take: an extra column travels
// through all three.
var reserved = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range []*arrow.Schema{documentSchema, featuresSchema, routedSchema} {
		for _, f := range s.Fields() {
			m[f.Name] = true
		}
	}
	return m
}()

// IsReservedColumn reports whether name is a column of the Document,
// Features or Routed schema, a name an extra column cannot have.
func IsReservedColumn(name string) bool { return reserved[name] }

// carriesExtras reports whether records of kind k carry extra columns from
// stage to stage.
func carriesExtras(k Kind) bool {
	return k == KindDocument || k == KindFeatures || k == KindRouted
}

// ExtraIndices returns the indices in s of its extra columns: those that are
// not columns of kind k's schema, in the order of s. It returns nil when s
// has none, without allocating when s has exactly the columns of k (which is
// what CheckSchema allows when s has no more fields than k's schema).
func ExtraIndices(s *arrow.Schema, k Kind) []int {
	want := SchemaOf(k)
	if want == nil || s.NumFields() <= want.NumFields() {
		return nil
	}
	var idx []int
	for i, f := range s.Fields() {
		if !want.HasField(f.Name) {
			idx = append(idx, i)
		}
	}
	return idx
}

// ExtraFields returns the fields of s at the indices ExtraIndices(s, k).
func ExtraFields(s *arrow.Schema, k Kind) []arrow.Field {
	idx := ExtraIndices(s, k)
	if idx == nil {
		return nil
	}
	fs := make([]arrow.Field, len(idx))
	for i, j := range idx {
		fs[i] = s.Field(j)
	}
	return fs
}

// Extend returns the schema of kind k followed by the fields extra, in that
// order, with k's metadata. With no extra fields it returns SchemaOf(k)
// itself, the shared schema. The extra fields must follow the rules of
// extra columns (see CheckExtra) and be of types ExtraTypeSupported accepts;
// an error is a *DecodeError with ReasonWrongSchema. The featurization and
// routing stages build their output schemas with it, so a batch with an
// extra column of another type fails there.
func Extend(k Kind, extra []arrow.Field) (*arrow.Schema, error) {
	base := SchemaOf(k)
	if base == nil {
		return nil, errorf(ReasonWrongSchema, "schemas: unknown kind %q", clip(string(k)))
	}
	if len(extra) == 0 {
		return base, nil
	}
	seen := make(map[string]bool, len(extra))
	for _, f := range extra {
		if err := checkExtraField(f); err != nil {
			return nil, err
		}
		if err := checkExtraType(f); err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, errorf(ReasonWrongSchema, "schemas: extra column %q appears twice", clip(f.Name))
		}
		seen[f.Name] = true
	}
	fields := make([]arrow.Field, 0, base.NumFields()+len(extra))
	fields = append(fields, base.Fields()...)
	fields = append(fields, extra...)
	md := base.Metadata()
	return arrow.NewSchema(fields, &md), nil
}

// CheckExtra checks the extra columns of s, a schema of kind k, against the
// rules of extra columns that every reader enforces: names that no column
// of ours has and that appear once, and no field metadata under MetaPrefix.
// (Their types are checked where a stage carries them: see Extend.) Kinds
// other than Document, Features and Routed do not carry extra columns, and
// any they have pass. An error is a *DecodeError with ReasonWrongSchema.
func CheckExtra(s *arrow.Schema, k Kind) error {
	if !carriesExtras(k) {
		return nil
	}
	for _, i := range ExtraIndices(s, k) {
		f := s.Field(i)
		if err := checkExtraField(f); err != nil {
			return err
		}
		if n := len(s.FieldIndices(f.Name)); n > 1 {
			return errorf(ReasonWrongSchema, "schemas: extra column %q appears %d times", clip(f.Name), n)
		}
	}
	return nil
}

// checkExtraField checks one extra field's name and metadata.
func checkExtraField(f arrow.Field) error {
	if f.Name == "" {
		return errorf(ReasonWrongSchema, "schemas: extra column without a name")
	}
	if reserved[f.Name] {
		return errorf(ReasonWrongSchema, "schemas: extra column %q takes the name of a column of ours; rename it", clip(f.Name))
	}
	for _, key := range f.Metadata.Keys() {
		if strings.HasPrefix(key, MetaPrefix) {
			return errorf(ReasonWrongSchema, "schemas: extra column %q has field metadata %q: keys starting %q are ours", clip(f.Name), clip(key), MetaPrefix)
		}
	}
	return nil
}

// checkExtraType checks the type of one extra field.
func checkExtraType(f arrow.Field) error {
	if !ExtraTypeSupported(f.Type) {
		return errorf(ReasonWrongSchema, "schemas: extra column %q is of type %s, which a stage cannot carry (see ExtraTypeSupported)", clip(f.Name), f.Type)
	}
	return nil
}

// ExtraTypeSupported reports whether an extra column can be of type t: bool,
// int8 to int64, uint8 to uint64, float32, float64, utf8, large_utf8, binary,
// large_binary, or a list or large list of one of these (nesting allowed, up
// to 8 levels). These are the types the archive writes as Parquet.
func ExtraTypeSupported(t arrow.DataType) bool { return extraTypeOK(t, 0) }

func extraTypeOK(t arrow.DataType, depth int) bool {
	if depth > 8 {
		return false
	}
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return true
	case arrow.LIST, arrow.LARGE_LIST:
		return extraTypeOK(t.(arrow.ListLikeType).Elem(), depth+1)
	}
	return false
}

// describeExtra names the extra columns of fs for error messages.
func describeExtra(fs []arrow.Field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = fmt.Sprintf("%s %s", clip(f.Name), f.Type)
	}
	return strings.Join(names, ", ")
}
