package analysis

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	exprruntime "github.com/expr-lang/expr/vm/runtime"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/metricsq"
)

// vectorEnv and scalarEnv are the two typed environments of numbers. Compiling against
// each lets the type checker reject `result[0] + 1` (not a bool) or `result.foo` before
// any run starts; a single `any`-typed env would defer every such mistake to the first
// measurement. documentEnv is the third, for JSON answers that are not numbers: their
// shape is known only when they come, so `result` is `any` there.
//
// Their shape follows Argo Rollouts so existing conditions keep working: `result` is a
// float64 for a scalar and a []float64 for a vector (so `result[0] >= 0.95` works), and
// `series` holds each sample with its labels (and, for a range query, its points); a
// JSON answer is `result` as encoding/json decodes it (`result.ok && result.rate > 0.9`).
type vectorEnv struct {
	Result []float64 `expr:"result"`
	// Value is the single sample's value; reading it when there are several series is an
	// error rather than a silent pick of the first.
	Value  float64           `expr:"value"`
	Series []metricsq.Sample `expr:"series"`
}

type scalarEnv struct {
	Result float64           `expr:"result"`
	Value  float64           `expr:"value"`
	Series []metricsq.Sample `expr:"series"`
}

type documentEnv struct {
	Result any `expr:"result"`
}

// Condition is a successCondition or failureCondition compiled once, safe for concurrent use.
type Condition struct {
	source      string
	vector      *vm.Program
	vectorErr   error
	scalar      *vm.Program
	scalarErr   error
	document    *vm.Program
	documentErr error
	usesValue   bool
	vms         sync.Pool
}

// ErrAmbiguousValue is returned when a condition reads `value` but the query returned a
// number of series other than one.
var ErrAmbiguousValue = errors.New("condition uses value but the query did not return exactly one series")

// CompileCondition type-checks src for a vector, a scalar and a JSON result and requires a
// bool; it fails when no shape compiles. ReadsNumbers says whether it can judge numbers.
func CompileCondition(src string) (*Condition, error) {
	c := &Condition{source: src}
	c.vector, c.vectorErr = compileFor(src, vectorEnv{})
	c.scalar, c.scalarErr = compileFor(src, scalarEnv{})
	c.document, c.documentErr = compileFor(src, documentEnv{})
	if c.vectorErr != nil && c.scalarErr != nil && c.documentErr != nil {
		return nil, fmt.Errorf("condition %q: %w", src, c.vectorErr)
	}
	program := c.vector
	switch {
	case program != nil:
	case c.scalar != nil:
		program = c.scalar
	default:
		program = c.document
	}
	node := program.Node()
	ast.Walk(&node, visitFunc(func(n *ast.Node) {
		if id, ok := (*n).(*ast.IdentifierNode); ok && id.Value == "value" {
			c.usesValue = true
		}
	}))
	c.vms.New = func() any { return &vm.VM{} }
	return c, nil
}

func compileFor(src string, env any) (*vm.Program, error) {
	program, err := compile(src, env)
	if err == nil && arithmetic(program.Node()) {
		// In the document environment result's type is known only when it comes, so the
		// checker cannot see that `result.rate * 100` is a number, not a bool.
		return nil, fmt.Errorf("%q computes a number, not a bool", src)
	}
	return program, err
}

// arithmetic reports whether n's outermost operation computes a number.
func arithmetic(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
			return true
		}
	case *ast.UnaryNode:
		return n.Operator == "-" || n.Operator == "+"
	}
	return false
}

func compile(src string, env any) (*vm.Program, error) {
	return expr.Compile(src,
		expr.Env(env),
		expr.AsBool(),
		expr.Patch(defaultPatcher{}),
		expr.Function("isNaN", func(p ...any) (any, error) { return math.IsNaN(p[0].(float64)), nil }, new(func(float64) bool)),
		expr.Function("isInf", func(p ...any) (any, error) { return math.IsInf(p[0].(float64), 0), nil }, new(func(float64) bool)),
		expr.Function("isNil", func(p ...any) (any, error) { return isNil(p[0]), nil }, new(func(any) bool)),
		expr.Function("asFloat", asFloat, new(func(any) float64)),
		expr.Function("asInt", asInt, new(func(any) int)),
		expr.Function("default", defaultOf),
		expr.Function(safeGet, safeFetch),
	)
}

// isNil is true for nil and for a nil map, list or pointer: what Argo Rollouts' isNil
// says of the result, and of any value here.
func isNil(x any) bool {
	if x == nil {
		return true
	}
	switch v := reflect.ValueOf(x); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// String is the condition's source.
func (c *Condition) String() string { return c.source }

// ReadsNumbers returns why the condition cannot judge a Prometheus result (a vector or a
// scalar), nil when it can.
func (c *Condition) ReadsNumbers() error {
	if c.vectorErr != nil && c.scalarErr != nil {
		return fmt.Errorf("condition %q: %w", c.source, c.vectorErr)
	}
	return nil
}

// readsVector and readsScalar say which numeric shape the condition compiles for.
func (c *Condition) readsVector() bool { return c.vectorErr == nil }
func (c *Condition) readsScalar() bool { return c.scalarErr == nil }

// Eval runs the condition on r, read-only: runs may share it. A scalar result gets the
// scalar environment; other numbers, a string result included, the vector one; a JSON
// document the environment of its numbers when it is numbers the condition reads, the
// document's otherwise. An expression error (index out of range, a condition written for
// another result shape, an ambiguous value) is returned naming the condition, and so is
// a panic.
func (c *Condition) Eval(r metricsq.Result) (ok bool, err error) {
	var value float64
	if len(r.Values) == 1 {
		value = r.Values[0]
	}
	var (
		program *vm.Program
		env     any
	)
	// A Prometheus result, or a document that is numbers.
	numbers := r.Type != model.ValNone || r.Document == nil
	switch {
	case numbers && r.Type == model.ValScalar && c.scalar != nil:
		program, env = c.scalar, &scalarEnv{Result: value, Value: value, Series: r.Series}
	case numbers && r.Type != model.ValScalar && c.vector != nil:
		program, env = c.vector, &vectorEnv{Result: r.Values, Value: value, Series: r.Series}
	case r.Document != nil && c.document != nil:
		program, env = c.document, &documentEnv{Result: r.Document.Value}
	case !numbers:
		return false, fmt.Errorf("condition %q on a JSON result: %w", c.source, c.documentErr)
	case r.Type == model.ValScalar:
		return false, fmt.Errorf("condition %q on a scalar result: %w", c.source, c.scalarErr)
	default:
		return false, fmt.Errorf("condition %q on a vector result: %w", c.source, c.vectorErr)
	}
	if c.usesValue && program != c.document && len(r.Series) != 1 {
		return false, fmt.Errorf("evaluating %q: %w (got %d)", c.source, ErrAmbiguousValue, len(r.Series))
	}
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("evaluating %q: panic: %v", c.source, p)
		}
	}()
	machine := c.vms.Get().(*vm.VM)
	defer c.vms.Put(machine)
	out, err := machine.Run(program, env)
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", c.source, err)
	}
	b, isBool := out.(bool)
	if !isBool {
		return false, fmt.Errorf("evaluating %q: returned %T, not bool", c.source, out)
	}
	return b, nil
}

// CompileCache compiles each distinct condition once for the whole process: thousands of
// runs of one template share one program.
type CompileCache struct {
	mu    sync.Mutex
	items map[string]compiled
	max   int
}

type compiled struct {
	c   *Condition
	err error
}

// NewCompileCache bounds the cache to max distinct sources; past that it starts over,
// which costs a recompile, never a wrong answer.
func NewCompileCache(max int) *CompileCache {
	return &CompileCache{items: map[string]compiled{}, max: max}
}

// Get returns the compiled condition for src, compiling it on first use.
func (cc *CompileCache) Get(src string) (*Condition, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if it, ok := cc.items[src]; ok {
		return it.c, it.err
	}
	if len(cc.items) >= cc.max {
		clear(cc.items)
	}
	c, err := CompileCondition(src)
	cc.items[src] = compiled{c, err}
	return c, err
}

const safeGet = "__promgateSafeGet"

// defaultPatcher rewrites the first argument of default(x, d) so that indexing and member
// access inside x yield nil instead of an error: default(result[0], 0) on an empty vector
// gives 0, which is what users mean (Argo Rollouts fails the index before default runs).
type defaultPatcher struct{}

func (defaultPatcher) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || len(call.Arguments) != 2 {
		return
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != "default" {
		return
	}
	ast.Walk(&call.Arguments[0], visitFunc(func(n *ast.Node) {
		m, ok := (*n).(*ast.MemberNode)
		if !ok || m.Method {
			return
		}
		ast.Patch(n, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: safeGet},
			Arguments: []ast.Node{m.Node, m.Property},
		})
	}))
}

type visitFunc func(*ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

func safeFetch(p ...any) (out any, err error) {
	defer func() {
		if recover() != nil {
			out, err = nil, nil
		}
	}()
	if p[0] == nil {
		return nil, nil
	}
	return exprruntime.Fetch(p[0], p[1]), nil
}

// defaultOf returns d when x is missing: nil, NaN, ±Inf or an empty list.
func defaultOf(p ...any) (any, error) {
	if len(p) != 2 {
		return nil, fmt.Errorf("default takes 2 arguments, got %d", len(p))
	}
	switch x := p[0].(type) {
	case nil:
		return p[1], nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return p[1], nil
		}
	case []float64:
		if len(x) == 0 {
			return p[1], nil
		}
	case []any:
		if len(x) == 0 {
			return p[1], nil
		}
	case string:
		if x == "" {
			return p[1], nil
		}
	}
	return p[0], nil
}

func asFloat(p ...any) (any, error) {
	switch x := p[0].(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return nil, fmt.Errorf("asFloat(%q): %w", x, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("asFloat: cannot convert %T", p[0])
}

func asInt(p ...any) (any, error) {
	switch x := p[0].(type) {
	case int:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("asInt(%v): not a finite number", x)
		}
		return int(x), nil
	case string:
		i, err := strconv.Atoi(x)
		if err != nil {
			return nil, fmt.Errorf("asInt(%q): %w", x, err)
		}
		return i, nil
	}
	return nil, fmt.Errorf("asInt: cannot convert %T", p[0])
}
