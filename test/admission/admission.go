// Package admission applies promgate's generated CRDs to objects the way the API server
// does on create, with the API server's own code and no server: prune, default, then the
// OpenAPI schema and the CEL rules. Tests use it to check that what a tool prints would be
// admitted.
package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/test/testbin"
)

// CRD is one CRD's admission.
type CRD struct {
	// Definition is the CRD as generated.
	Definition *apiextensionsv1.CustomResourceDefinition
	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaCreateValidator
	cel        *cel.Validator
}

// Load reads config/crd/bases/promgate.io_<plural>.yaml and builds its admission; an error
// when the API server would refuse the CRD itself.
func Load(plural string) (*CRD, error) {
	root, err := testbin.RepoRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "promgate.io_"+plural+".yaml"))
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		return nil, fmt.Errorf("decoding the %s CRD: %w", plural, err)
	}
	var internal apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&crd, &internal, nil); err != nil {
		return nil, fmt.Errorf("converting the %s CRD: %w", plural, err)
	}
	// The API server records the stored version itself.
	internal.Status.StoredVersions = []string{crd.Spec.Versions[0].Name}
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), &internal); len(errs) > 0 {
		return nil, fmt.Errorf("the API server would refuse the %s CRD: %w", plural, errs.ToAggregate())
	}
	// Conversion hoists a schema shared by every version to spec.validation.
	props := internal.Spec.Validation.OpenAPIV3Schema
	s, err := structuralschema.NewStructural(props)
	if err != nil {
		return nil, fmt.Errorf("the %s CRD's schema is not structural: %w", plural, err)
	}
	v, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		return nil, fmt.Errorf("the %s CRD's schema: %w", plural, err)
	}
	return &CRD{Definition: &crd, structural: s, schema: v, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, nil
}

// Create returns what the API server would say about creating the object written as YAML
// or JSON.
func (c *CRD) Create(doc []byte) (field.ErrorList, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	// As the API server decodes: integers as int64, which int-or-string fields need.
	var obj map[string]any
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, err
	}
	pruning.Prune(obj, c.structural, true)
	defaulting.Default(obj, c.structural)
	errs := apiservervalidation.ValidateCustomResource(nil, obj, c.schema)
	celErrs, _ := c.cel.Validate(context.Background(), nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...), nil
}

// Prune drops from obj, decoded from JSON, what the API server would not store.
func (c *CRD) Prune(obj map[string]any) { pruning.Prune(obj, c.structural, true) }
