package schemas

import (
	"sort"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
)

// Arrow schema metadata keys present in every schema this package defines.
const (
	MetaSchemaVersion = "domainflow.schema_version" // strconv.Itoa(Version)
	MetaKind          = "domainflow.kind"           // a Kind
)

// Kind names what the rows of a schema are.
type Kind string

// The kinds of schema.
const (
	KindDocument    Kind = "document"     // input documents
	KindFeatures    Kind = "features"     // documents with their feature vectors
	KindRouted      Kind = "routed"       // documents with the domain a router placed them in
	KindRouterModel Kind = "router_model" // one row per domain of a router
	KindCheckpoint  Kind = "checkpoint"   // one row per tensor of an expert checkpoint
)

// Column names. The document columns come first, in this order, in the
// Document, Features and Routed schemas.
const (
	ColID              = "id"
	ColText            = "text"
	ColMeta            = "meta"
	ColOriginTopic     = "origin_topic"
	ColOriginPartition = "origin_partition"
	ColOriginOffset    = "origin_offset"
	ColOriginRow       = "origin_row"

	ColDim               = "dim"                // Features
	ColIndices           = "indices"            // Features; null: Values is the dense vector
	ColValues            = "values"             // Features
	ColFeaturizerVersion = "featurizer_version" // Features

	ColDomain        = "domain"         // Routed, RouterModel
	ColDistance      = "distance"       // Routed
	ColRouterVersion = "router_version" // Routed

	ColSize     = "size"      // RouterModel
	ColTopTerms = "top_terms" // RouterModel
	ColCentroid = "centroid"  // RouterModel

	ColName  = "name"  // Checkpoint
	ColShape = "shape" // Checkpoint
	ColDType = "dtype" // Checkpoint
	ColData  = "data"  // Checkpoint
)

// NumDocumentColumns is the number of document columns that lead the
// Document, Features and Routed schemas.
const NumDocumentColumns = 7

func documentFields() []arrow.Field {
	return []arrow.Field{
		{Name: ColID, Type: arrow.BinaryTypes.String},
		{Name: ColText, Type: arrow.BinaryTypes.String},
		{Name: ColMeta, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColOriginTopic, Type: arrow.BinaryTypes.String},
		{Name: ColOriginPartition, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColOriginOffset, Type: arrow.PrimitiveTypes.Int64},
		{Name: ColOriginRow, Type: arrow.PrimitiveTypes.Int32},
	}
}

func newSchema(kind Kind, fields ...arrow.Field) *arrow.Schema {
	md := arrow.NewMetadata(
		[]string{MetaKind, MetaSchemaVersion},
		[]string{string(kind), strconv.Itoa(Version)},
	)
	return arrow.NewSchema(fields, &md)
}

var (
	documentSchema = newSchema(KindDocument, documentFields()...)

	featuresSchema = newSchema(KindFeatures, append(documentFields(),
		arrow.Field{Name: ColDim, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColIndices, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32), Nullable: true},
		arrow.Field{Name: ColValues, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
		arrow.Field{Name: ColFeaturizerVersion, Type: arrow.PrimitiveTypes.Int64},
	)...)

	routedSchema = newSchema(KindRouted, append(documentFields(),
		arrow.Field{Name: ColDomain, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColDistance, Type: arrow.PrimitiveTypes.Float32},
		arrow.Field{Name: ColRouterVersion, Type: arrow.PrimitiveTypes.Int64},
	)...)

	routerModelSchema = newSchema(KindRouterModel,
		arrow.Field{Name: ColDomain, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColSize, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: ColTopTerms, Type: arrow.ListOfNonNullable(arrow.BinaryTypes.String)},
		arrow.Field{Name: ColCentroid, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
	)

	checkpointSchema = newSchema(KindCheckpoint,
		arrow.Field{Name: ColName, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: ColShape, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)},
		arrow.Field{Name: ColDType, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: ColData, Type: arrow.BinaryTypes.Binary},
	)
)

// DocumentSchema is the schema of input documents: id, text, meta (nullable
// JSON object text), origin_topic, origin_partition, origin_offset, origin_row.
// The returned schema is shared; do not modify it.
func DocumentSchema() *arrow.Schema { return documentSchema }

// FeaturesSchema is the document columns followed by dim int32, indices
// list<int32> (null for a dense vector), values list<float32> and
// featurizer_version int64. A sparse row has len(indices) == len(values); a
// dense row has len(values) == dim.
func FeaturesSchema() *arrow.Schema { return featuresSchema }

// RoutedSchema is the document columns followed by domain int32, distance
// float32 (to the domain's centroid) and router_version int64.
func RoutedSchema() *arrow.Schema { return routedSchema }

// RouterModelSchema has one row per domain: domain int32, size int64,
// top_terms list<utf8>, centroid list<float32>. After the domains, rows
// with negative domain ids (-1, -2, …) are the router's fine centroids, its
// novelty reference (no top terms; size is their fit cluster's). Facts
// about the whole router go into the schema metadata at write time (see
// WithMetadata).
func RouterModelSchema() *arrow.Schema { return routerModelSchema }

// CheckpointSchema has one row per tensor: name utf8, shape list<int64>, dtype
// utf8 and data binary (the tensor bytes, little endian). Facts about the
// whole checkpoint go into the schema metadata (see WithMetadata).
func CheckpointSchema() *arrow.Schema { return checkpointSchema }

// SchemaOf returns the schema of kind k, or nil for an unknown kind.
func SchemaOf(k Kind) *arrow.Schema {
	switch k {
	case KindDocument:
		return documentSchema
	case KindFeatures:
		return featuresSchema
	case KindRouted:
		return routedSchema
	case KindRouterModel:
		return routerModelSchema
	case KindCheckpoint:
		return checkpointSchema
	}
	return nil
}

// WithMetadata returns a copy of s whose metadata is that of s plus kv. The
// kind and schema version of s are kept: kv cannot override them. Keys are
// written in sorted order so that equal inputs give equal schemas.
func WithMetadata(s *arrow.Schema, kv map[string]string) *arrow.Schema {
	old := s.Metadata()
	merged := make(map[string]string, old.Len()+len(kv))
	for _, k := range old.Keys() {
		v, _ := old.GetValue(k)
		merged[k] = v
	}
	for k, v := range kv {
		if k == MetaKind || k == MetaSchemaVersion {
			if _, ok := merged[k]; ok {
				continue
			}
		}
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = merged[k]
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchemaWithEndian(s.Fields(), &md, s.Endianness())
}

// KindOf reads the kind and schema version from the metadata of s. A missing
// or unknown kind, or a missing version, is ReasonWrongSchema; a version other
// than Version is ReasonUnknownSchemaVersion (the kind and the version read
// are returned with it when they could be read).
func KindOf(s *arrow.Schema) (Kind, int, error) {
	if s == nil {
		return "", 0, errorf(ReasonWrongSchema, "schemas: no schema")
	}
	md := s.Metadata()
	k, ok := md.GetValue(MetaKind)
	if !ok {
		return "", 0, errorf(ReasonWrongSchema, "schemas: schema has no %s metadata", MetaKind)
	}
	kind := Kind(k)
	if SchemaOf(kind) == nil {
		return kind, 0, errorf(ReasonWrongSchema, "schemas: unknown kind %q", clip(k))
	}
	vs, ok := md.GetValue(MetaSchemaVersion)
	if !ok {
		return kind, 0, errorf(ReasonWrongSchema, "schemas: %s schema has no %s metadata", kind, MetaSchemaVersion)
	}
	v, err := strconv.Atoi(vs)
	if err != nil {
		return kind, 0, errorf(ReasonUnknownSchemaVersion, "schemas: %s schema version %q is not an integer", kind, clip(vs))
	}
	if v != Version {
		return kind, v, errorf(ReasonUnknownSchemaVersion, "schemas: %s schema version %d, want %d", kind, v, Version)
	}
	return kind, v, nil
}

// CheckSchema checks that s is of kind want (ReasonWrongSchema otherwise)
// and of the current Version, and that it has every column of that kind's
// schema with a matching type. Extra columns are allowed, in any place; those
// of a Document, Features or Routed schema must follow the rules of extra
// columns (see CheckExtra).
func CheckSchema(s *arrow.Schema, want Kind) error {
	k, _, err := KindOf(s)
	if err != nil {
		return err
	}
	if k != want {
		return errorf(ReasonWrongSchema, "schemas: %s schema, want %s", k, want)
	}
	if err := checkFields(s, SchemaOf(want).Fields()); err != nil {
		return err
	}
	return CheckExtra(s, want)
}

// checkFields checks that s has every field of want with a matching type.
func checkFields(s *arrow.Schema, want []arrow.Field) error {
	for _, f := range want {
		idx := s.FieldIndices(f.Name)
		if len(idx) == 0 {
			return errorf(ReasonWrongSchema, "schemas: missing column %q", f.Name)
		}
		if len(idx) > 1 {
			return errorf(ReasonWrongSchema, "schemas: column %q appears %d times", f.Name, len(idx))
		}
		if got := s.Field(idx[0]).Type; !sameType(got, f.Type) {
			return errorf(ReasonWrongSchema, "schemas: column %q is %s, want %s", f.Name, got, f.Type)
		}
	}
	return nil
}

// sameType is arrow.TypeEqual except that list element names and
// nullability do not matter (other writers name and flag them differently).
func sameType(a, b arrow.DataType) bool {
	la, oka := a.(*arrow.ListType)
	lb, okb := b.(*arrow.ListType)
	if oka || okb {
		return oka && okb && sameType(la.Elem(), lb.Elem())
	}
	return arrow.TypeEqual(a, b)
}
