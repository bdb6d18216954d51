package analyzecmd

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
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
	// Problems are what reading the document found wrong: unknown fields, a wrong
	// apiVersion or kind, and the structural rules the CRD enforces at admission. Paths
	// are relative to the spec, as the engine has them (metrics[NAME].field), or to the
	// document for apiVersion, kind and metadata; a problem with no place has none.
	Problems field.ErrorList
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
	t.Problems = append(t.Problems, errs...)
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
	if err != nil {
		t.add(problemAt("", err.Error()))
		return t, nil
	}
	t.Spec = &obj.Spec
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
	checkSpec(&t)
	return t, nil
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
// minimums. A file is linted with no API server to enforce them.
func checkSpec(t *template) {
	s := t.Spec
	if len(s.Metrics) == 0 {
		t.add(field.Required(field.NewPath("metrics"), "at least one metric is required"))
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
		for _, lim := range []struct {
			field string
			v     *int32
			min   int32
		}{
			{"count", m.Count, 0},
			{"failureLimit", m.FailureLimit, 0},
			{"inconclusiveLimit", m.InconclusiveLimit, 0},
			{"consecutiveErrorLimit", m.ConsecutiveErrorLimit, 0},
			{"consecutiveSuccessLimit", m.ConsecutiveSuccessLimit, 1},
		} {
			if lim.v != nil && *lim.v < lim.min {
				t.add(field.Invalid(f.Child(lim.field), *lim.v, fmt.Sprintf("%d is below the minimum %d", *lim.v, lim.min)))
			}
		}
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
		switch {
		case a.Value != nil && a.ValueFrom != nil:
			t.add(field.Invalid(f, field.OmitValueType{}, "value and valueFrom are mutually exclusive"))
		case a.ValueFrom != nil && a.ValueFrom.SecretKeyRef == nil:
			t.add(field.Required(f.Child("valueFrom", "secretKeyRef"), "is required"))
		case a.ValueFrom != nil:
			t.add(providers.CheckSecretRef(f.Child("valueFrom", "secretKeyRef"), a.ValueFrom.SecretKeyRef)...)
		}
	}
	// A misspelt name here is silent at run time: a metric meant to be dry-run would
	// decide the verdict.
	knownMetric := func(path *field.Path, name string) {
		if name != "*" && !names[name] {
			t.add(fielderr.WithDetail(field.NotFound(path, name), fmt.Sprintf("no metric named %q (use a metric's name or \"*\")", name)))
		}
	}
	for i, d := range s.DryRun {
		knownMetric(field.NewPath("dryRun").Index(i).Child("metricName"), d.MetricName)
	}
	for i, r := range s.MeasurementRetention {
		p := field.NewPath("measurementRetention").Index(i)
		knownMetric(p.Child("metricName"), r.MetricName)
		if r.Limit < 1 || r.Limit > 1000 {
			t.add(field.Invalid(p.Child("limit"), r.Limit, fmt.Sprintf("%d is not between 1 and 1000", r.Limit)))
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
