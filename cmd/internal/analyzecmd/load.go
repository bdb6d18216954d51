package analyzecmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/analysis"
	"github.com/promgate/promgate/api/v1alpha1"
	"github.com/promgate/promgate/fielderr"
	"github.com/promgate/promgate/providers"
)

// template is one document of a template file.
type template struct {
	File string
	// Doc is the document's 1-based position in the file.
	Doc  int
	Kind string
	Name string
	// Spec is nil when the document could not be decoded as a template (wrong apiVersion
	// or kind, a value of the wrong type); Problems then say why.
	Spec *v1alpha1.AnalysisTemplateSpec
	// Problems are what reading the document found wrong: unknown fields, values of the
	// wrong type, a wrong apiVersion or kind, and the structural rules the CRD enforces
	// at admission. Paths are relative to the spec, as the engine has them
	// (metrics[NAME].field), or to the document for apiVersion, kind and metadata; a
	// problem with no place has none.
	Problems field.ErrorList
	// decodeFailed are the fields whose values were of the wrong type and left out: what
	// is said about them later (required, say) would only repeat it.
	decodeFailed []string
}

func (t template) String() string {
	switch {
	case t.Kind == "":
		return "document " + strconv.Itoa(t.Doc)
	case t.Name == "":
		return t.Kind + " in document " + strconv.Itoa(t.Doc)
	}
	return t.Kind + "/" + t.Name
}

// line formats p as lint prints it: FILE: Kind/NAME: field: message, on one line so that
// each problem is one line to grep; what follows a newline (expr's drawing of where a
// condition broke) repeats the position the first line already gives.
func (t template) line(p *field.Error) string {
	msg := p.Detail
	if msg == "" {
		msg = p.ErrorBody()
	}
	msg, _, _ = strings.Cut(msg, "\n")
	if p.Field == "" {
		return fmt.Sprintf("%s: %s: %s", t.File, t, msg)
	}
	return fmt.Sprintf("%s: %s: %s: %s", t.File, t, p.Field, msg)
}

func (t *template) add(errs ...*field.Error) {
	for _, e := range errs {
		if !slices.Contains(t.decodeFailed, e.Field) {
			t.Problems = append(t.Problems, e)
		}
	}
}

// problemAt is a problem at a path that exists only as text, such as one the JSON decoder
// reports, or at no path at all.
func problemAt(path, detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeInvalid, Field: path, BadValue: field.OmitValueType{}, Detail: detail}
}

// loadTemplates reads every document of a (multi-document) YAML file. The error is for a
// file that cannot be read or is not YAML; problems with a template are in its Problems,
// so one broken document does not hide the others.
func loadTemplates(path string) ([]template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []template
	for doc := 1; ; doc++ {
		b, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if isOnlyComments(b) {
			continue
		}
		t, err := decodeTemplate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		t.File, t.Doc = path, doc
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no AnalysisTemplate or ClusterAnalysisTemplate found", path)
	}
	return out, nil
}

func isOnlyComments(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// decodeTemplate decodes one document; the error is for text that is not YAML.
func decodeTemplate(b []byte) (template, error) {
	// Strict: a key given twice would otherwise silently lose one of its values.
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return template{}, fmt.Errorf("not YAML: %w", err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sjson.UnmarshalCaseSensitivePreserveInts(j, &head); err != nil {
		return template{}, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	t := template{Kind: head.Kind, Name: head.Metadata.Name}
	switch {
	case strings.HasPrefix(head.APIVersion, "argoproj.io/"):
		t.add(field.Invalid(field.NewPath("apiVersion"), head.APIVersion, fmt.Sprintf("%s is Argo Rollouts'; change it to %s (the fields are the same)", head.APIVersion, v1alpha1.GroupVersion)))
		return t, nil
	case head.APIVersion != v1alpha1.GroupVersion.String():
		t.add(field.Invalid(field.NewPath("apiVersion"), head.APIVersion, fmt.Sprintf("%q: want %s", head.APIVersion, v1alpha1.GroupVersion)))
		return t, nil
	case head.Kind != "AnalysisTemplate" && head.Kind != "ClusterAnalysisTemplate":
		t.add(field.Invalid(field.NewPath("kind"), head.Kind, fmt.Sprintf("%q: want AnalysisTemplate or ClusterAnalysisTemplate", head.Kind)))
		return t, nil
	}
	// Both kinds have the same shape. sigs.k8s.io/json rather than yaml.UnmarshalStrict:
	// it reports every unknown field with its full path, not just the first one's name,
	// so a misspelt condition is found in the metric that has it.
	var obj v1alpha1.AnalysisTemplate
	strict, err := sjson.UnmarshalStrict(j, &obj)
	var wrong []typeProblem
	if err != nil {
		// A value of the wrong type stops the decoder at the first one: find each, so
		// that one field does not hide the others, and decode the rest without them.
		if j, wrong, err = withoutWrongTypes(j); err == nil {
			obj = v1alpha1.AnalysisTemplate{}
			strict, err = sjson.UnmarshalStrict(j, &obj)
		}
		if err != nil {
			t.add(problemAt("", err.Error()))
			return t, nil
		}
	}
	t.Spec = &obj.Spec
	for _, w := range wrong {
		p := specPath(w.path, obj.Spec.Metrics)
		t.add(problemAt(p, w.detail))
		t.decodeFailed = append(t.decodeFailed, p)
		if w.path == "spec" {
			// There is nothing of a spec to check.
			t.Spec = nil
		}
	}
	for _, e := range strict {
		if fe, ok := errors.AsType[sjson.FieldError](e); ok {
			// The message is "unknown field" or "duplicate field" followed by the path.
			t.add(problemAt(specPath(fe.FieldPath(), obj.Spec.Metrics), strings.TrimSuffix(e.Error(), " "+strconv.Quote(fe.FieldPath()))))
			continue
		}
		t.add(problemAt("", e.Error()))
	}
	if t.Name == "" {
		t.add(field.Required(field.NewPath("metadata", "name"), "a name is required"))
	}
	if t.Spec != nil {
		checkSpec(&t)
	}
	return t, nil
}

// typeProblem is a value whose JSON type its field does not take.
type typeProblem struct {
	// path is the field's, as the decoder writes it: spec.metrics[0].count.
	path   string
	detail string
}

// withoutWrongTypes returns the template document j without the values that do not
// decode into their fields, and those values. A value that does not decode is found by
// decoding it alone, at its place in an otherwise empty document: when an object or a
// list decodes empty, the problem is in one of its members, which are tried in turn.
func withoutWrongTypes(j []byte) ([]byte, []typeProblem, error) {
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, nil, err
	}
	decodes := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return sjson.UnmarshalCaseSensitivePreserveInts(b, &v1alpha1.AnalysisTemplate{})
	}
	var found []typeProblem
	var visit func(path []any, v any) bool
	// visit reports whether v, at path, must go.
	visit = func(path []any, v any) bool {
		err := decodes(isolate(path, v))
		if err == nil {
			return false
		}
		switch x := v.(type) {
		case map[string]any:
			if len(x) > 0 && decodes(isolate(path, map[string]any{})) == nil {
				for _, k := range slices.Sorted(maps.Keys(x)) {
					if visit(append(slices.Clip(path), k), x[k]) {
						delete(x, k)
					}
				}
				return false
			}
		case []any:
			if len(x) > 0 && decodes(isolate(path, []any{})) == nil {
				for i := range x {
					if visit(append(slices.Clip(path), i), x[i]) {
						// A null keeps the others' indexes, and decodes as a zero value.
						x[i] = nil
					}
				}
				return false
			}
		}
		p := docPath(path)
		found = append(found, typeProblem{path: p, detail: typeDetail(p, err)})
		return true
	}
	if visit(nil, doc) {
		return nil, found, errors.New("the document is not a template")
	}
	out, err := json.Marshal(doc)
	return out, found, err
}

// isolate builds a document holding only v, at path.
func isolate(path []any, v any) any {
	for i := len(path) - 1; i >= 0; i-- {
		switch p := path[i].(type) {
		case string:
			v = map[string]any{p: v}
		case int:
			v = []any{v}
		}
	}
	return v
}

// docPath writes path as the decoder does: spec.metrics[0].count.
func docPath(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

var (
	typeError   = regexp.MustCompile(`cannot unmarshal (.+?) into Go (?:struct field \S+ of type|value of type) (\S+)`)
	intOrString = regexp.MustCompile(`^spec\.metrics\[\d+\]\.(count|failureLimit|inconclusiveLimit|consecutiveErrorLimit|consecutiveSuccessLimit|provider\.prometheus\.timeout)$`)
)

// typeDetail says what a decoding error at path says, in the terms of the YAML: "got
// string, want an integer".
func typeDetail(path string, err error) string {
	m := typeError.FindStringSubmatch(err.Error())
	if m == nil {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	want := m[2]
	if want == "int32" && intOrString.MatchString(path) {
		// An int-or-string field decodes its integer itself: the error names only that.
		want = "intstr.IntOrString"
	}
	switch want {
	case "intstr.IntOrString":
		want = "an integer or a string"
	case "v1alpha1.DurationString", "string":
		want = "a string"
	case "int32", "int64":
		want = "an integer"
	case "bool":
		want = "true or false"
	default:
		switch {
		case strings.HasPrefix(want, "[]"):
			want = "a list"
		case strings.HasPrefix(want, "map["), strings.Contains(want, "."):
			want = "an object"
		}
	}
	return fmt.Sprintf("wrong type: got %s, want %s", m[1], want)
}

var metricIndex = regexp.MustCompile(`^spec\.metrics\[(\d+)\]`)

// specPath turns a document path (spec.metrics[0].sucessCondition) into the form the
// engine uses (metrics[success-rate].sucessCondition).
func specPath(path string, metrics []v1alpha1.Metric) string {
	if m := metricIndex.FindStringSubmatch(path); m != nil {
		if i, err := strconv.Atoi(m[1]); err == nil && i < len(metrics) {
			path = analysis.MetricPath(i, metrics[i]).String() + path[len(m[0]):]
		}
	}
	return strings.TrimPrefix(path, "spec.")
}

var argName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// checkSpec adds what the CRD's schema and CEL rules would reject at admission and the
// engine does not check metric by metric: names, args, references between fields and
// providers. A file is linted with no API server to enforce them. Limits, durations and
// what dryRun and measurementRetention select are the engine's to check, once args are
// rendered.
func checkSpec(t *template) {
	s := t.Spec
	if len(s.Metrics) == 0 && len(s.Templates) == 0 {
		t.add(field.Required(field.NewPath("metrics"), "at least one metric, or one included template, is required"))
	}
	names := map[string]bool{}
	for i, m := range s.Metrics {
		f := analysis.MetricPath(i, m)
		switch {
		case m.Name == "":
			t.add(field.Required(f.Child("name"), "a name is required"))
		case names[m.Name]:
			t.add(fielderr.WithDetail(field.Duplicate(f.Child("name"), m.Name), fmt.Sprintf("duplicate metric name %q", m.Name)))
		}
		names[m.Name] = true
		t.add(analysis.CheckProvider(f.Child("provider"), &m.Provider)...)
	}
	declared := map[string]bool{}
	for _, a := range s.Args {
		f := field.NewPath("args").Key(a.Name)
		switch {
		case !argName.MatchString(a.Name):
			t.add(field.Invalid(f.Child("name"), a.Name, fmt.Sprintf("%q is not a valid arg name (%s)", a.Name, argName)))
		case declared[a.Name]:
			t.add(fielderr.WithDetail(field.Duplicate(f.Child("name"), a.Name), fmt.Sprintf("duplicate arg %q", a.Name)))
		}
		declared[a.Name] = true
		from := f.Child("valueFrom")
		switch v := a.ValueFrom; {
		case a.Value != nil && v != nil:
			t.add(field.Invalid(f, field.OmitValueType{}, "value and valueFrom are mutually exclusive"))
		case v == nil:
		case (v.SecretKeyRef == nil) == (v.FieldRef == nil):
			t.add(field.Invalid(from, field.OmitValueType{}, "exactly one of secretKeyRef and fieldRef must be set"))
		case v.SecretKeyRef != nil:
			t.add(providers.CheckSecretRef(from.Child("secretKeyRef"), v.SecretKeyRef)...)
		case v.FieldRef.FieldPath == "":
			t.add(field.Required(from.Child("fieldRef", "fieldPath"), "is required, e.g. metadata.labels['app']"))
		}
	}
	for i, ref := range s.Templates {
		if ref.TemplateName == "" {
			t.add(field.Required(field.NewPath("templates").Index(i).Child("templateName"), "is required"))
		}
	}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// parseInterleaved parses flags given before, between and after positional arguments, which
// the flag package alone would take as positional from the first non-flag on (so
// `promgate lint a.yaml -f b.yaml` would look for a file named "-f").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional, args = append(positional, args[0]), args[1:]
	}
}
