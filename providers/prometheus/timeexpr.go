package prometheus

import (
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// TimeExpr is an expr expression returning a time, as Argo Rollouts' rangeQuery writes its
// bounds: now() - duration("10m"). now() is the measurement's time, not the clock's, so
// runs measuring at the same tick ask the same range and share the query.
type TimeExpr struct {
	source  string
	program *vm.Program
}

// timeEnv is what a TimeExpr sees: now() is rewritten to read Now.
type timeEnv struct {
	Now time.Time `expr:"__promgateNow"`
}

// nowPatcher turns every now() into the measurement's time.
type nowPatcher struct{}

func (nowPatcher) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && b.Name == "now" && len(b.Arguments) == 0 {
		ast.Patch(node, &ast.IdentifierNode{Value: "__promgateNow"})
	}
}

// CompileTime compiles src; it fails unless src returns a time.
func CompileTime(src string) (*TimeExpr, error) {
	program, err := expr.Compile(src, expr.Env(timeEnv{}), expr.Patch(nowPatcher{}))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	if t := program.Node().Type(); t != reflect.TypeFor[time.Time]() {
		return nil, fmt.Errorf("expression %q returns %s, not a time (e.g. now() - duration(\"5m\"))", src, typeName(t))
	}
	return &TimeExpr{source: src, program: program}, nil
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a value of unknown type"
	}
	return t.String()
}

// String is the expression's source.
func (t *TimeExpr) String() string { return t.source }

// At evaluates the expression with now() at now.
func (t *TimeExpr) At(now time.Time) (time.Time, error) {
	out, err := expr.Run(t.program, timeEnv{Now: now})
	if err != nil {
		return time.Time{}, fmt.Errorf("evaluating %q: %w", t.source, err)
	}
	v, ok := out.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("evaluating %q: returned %T, not a time", t.source, out)
	}
	return v, nil
}
