package schemas

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
)

// TestCheckSchemaExtraColumns: a Document, Features or Routed schema with
// extra columns passes CheckSchema for its kind when they follow the rules,
// wherever they are, and is refused with a sentence naming the column when
// they do not.
func TestCheckSchemaExtraColumns(t *testing.T) {
	str := arrow.BinaryTypes.String
	md := func(k, v string) arrow.Metadata { return arrow.NewMetadata([]string{k}, []string{v}) }
	tests := []struct {
		name  string
		kind  Kind
		front []arrow.Field // before the kind's columns
		back  []arrow.Field // after them
		want  string        // "" for ok, else a part of the error
	}{
		{"none", KindDocument, nil, nil, ""},
		{"string int64 float64 list nullable", KindDocument, nil, []arrow.Field{
			{Name: "lang", Type: str}, {Name: "n", Type: arrow.PrimitiveTypes.Int64},
			{Name: "score", Type: arrow.PrimitiveTypes.Float64}, {Name: "tags", Type: arrow.ListOf(str)},
			{Name: "maybe", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, ""},
		{"in front, with user metadata", KindFeatures, []arrow.Field{{Name: "lang", Type: str, Metadata: md("user.x", "y")}}, nil, ""},
		{"large list of lists", KindRouted, nil, []arrow.Field{{Name: "m", Type: arrow.LargeListOf(arrow.ListOf(arrow.PrimitiveTypes.Uint8))}}, ""},
		{"a Routed name on a Document", KindDocument, nil, []arrow.Field{{Name: ColDomain, Type: str}}, `extra column "domain" takes the name`},
		{"a Features name on a Routed", KindRouted, nil, []arrow.Field{{Name: ColIndices, Type: str}}, `extra column "indices" takes the name`},
		{"our field metadata", KindFeatures, nil, []arrow.Field{{Name: "lang", Type: str, Metadata: md(MetaKind, "x")}}, `keys starting "domainflow." are ours`},
		{"twice", KindDocument, nil, []arrow.Field{{Name: "lang", Type: str}, {Name: "lang", Type: str}}, `extra column "lang" appears 2 times`},
	}
	for _, tt := range tests {
		base := SchemaOf(tt.kind)
		fields := append(append(append([]arrow.Field(nil), tt.front...), base.Fields()...), tt.back...)
		bmd := base.Metadata()
		s := arrow.NewSchema(fields, &bmd)
		err := CheckSchema(s, tt.kind)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: CheckSchema = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || ReasonOf(err) != ReasonWrongSchema):
			t.Errorf("%s: CheckSchema = %v, want a wrong-schema error containing %q", tt.name, err, tt.want)
		}
		if tt.want != "" {
			continue
		}
		extra := ExtraFields(s, tt.kind)
		if len(extra) != len(tt.front)+len(tt.back) {
			t.Errorf("%s: ExtraFields = %v", tt.name, extra)
		}
		// The next kind's schema with these columns passes for that kind.
		next := map[Kind]Kind{KindDocument: KindFeatures, KindFeatures: KindRouted, KindRouted: KindRouted}[tt.kind]
		ext, err := Extend(next, extra)
		if err != nil {
			t.Errorf("%s: Extend: %v", tt.name, err)
			continue
		}
		if err := CheckSchema(ext, next); err != nil {
			t.Errorf("%s: CheckSchema(Extend(%s)) = %v", tt.name, next, err)
		}
		if len(extra) == 0 && ext != SchemaOf(next) {
			t.Errorf("%s: Extend without extra fields is not the shared schema", tt.name)
		}
	}
}

// TestExtendRefuses: Extend checks the fields it adds.
func TestExtendRefuses(t *testing.T) {
	for _, f := range [][]arrow.Field{
		{{Name: ColText, Type: arrow.BinaryTypes.String}},
		{{Name: "a", Type: arrow.BinaryTypes.String}, {Name: "a", Type: arrow.BinaryTypes.String}},
		{{Name: "", Type: arrow.BinaryTypes.String}},
		{{Name: "when", Type: arrow.FixedWidthTypes.Date32}},
		{{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.BinaryTypes.String})}},
	} {
		if _, err := Extend(KindRouted, f); ReasonOf(err) != ReasonWrongSchema {
			t.Errorf("Extend(%v) = %v, want a wrong-schema error", f, err)
		}
	}
}
