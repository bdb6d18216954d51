package metricsq

import (
	"errors"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRender(t *testing.T) {
	args := map[string]string{"service": "checkout", "service-name": "api", "ns": "prod", "empty": ""}
	tests := []struct {
		name    string
		query   string
		want    string
		wantErr string
	}{
		{name: "no placeholders", query: `up`, want: `up`},
		{name: "one", query: `up{job="{{args.service}}"}`, want: `up{job="checkout"}`},
		{name: "spaces tolerated", query: `up{job="{{ args.service }}"}`, want: `up{job="checkout"}`},
		{name: "dash in name", query: `up{job="{{args.service-name}}"}`, want: `up{job="api"}`},
		{name: "repeated", query: `{{args.ns}}/{{args.ns}}`, want: `prod/prod`},
		{name: "empty value is a value", query: `a{{args.empty}}b`, want: `ab`},
		{name: "other templates untouched", query: `{{metric.name}}`, want: `{{metric.name}}`},
		{name: "missing", query: `up{job="{{args.x}}"}`, wantErr: `argument "x" is not defined`},
		{
			name:    "all missing reported once each",
			query:   `{{args.x}} {{args.y}} {{args.x}}`,
			wantErr: "argument \"x\" is not defined\nargument \"y\" is not defined",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.query, args)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				var undefined *UndefinedArgError
				assert.True(t, errors.As(err, &undefined))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRenderDoesNotExpandValues(t *testing.T) {
	got, err := Render(`{{args.a}}`, map[string]string{"a": "{{args.b}}"})
	require.NoError(t, err)
	assert.Equal(t, `{{args.b}}`, got)
}

func TestArgNames(t *testing.T) {
	assert.Equal(t, []string{"service", "lookback"}, ArgNames(`x{s="{{args.service}}"}[{{ args.lookback }}] / y{s="{{args.service}}"} {{other}}`))
	assert.Empty(t, ArgNames("up"))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		query    string
		wantType model.ValueType
		wantErr  string
	}{
		{query: `sum(rate(http_requests_total{code!~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`, wantType: model.ValVector},
		{query: `scalar(vector(0.95))`, wantType: model.ValScalar},
		{query: `0.5`, wantType: model.ValScalar},
		{query: `rate(x[5m])[10m:1m]`, wantType: model.ValMatrix},
		{query: `"text"`, wantType: model.ValString},
		{query: `histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m])))`, wantType: model.ValVector},
		{query: `sum(rate(x[5m])`, wantErr: `invalid PromQL: 1:`},
		{query: `up{job="a"} +`, wantErr: `invalid PromQL: 1:`},
		{query: `up{job="{{args.x}}"}` + "\n" + `and on() foo(`, wantErr: `invalid PromQL: 2:`},
		{query: ``, wantErr: `invalid PromQL`},
	}
	for _, tt := range tests {
		typ, err := Validate(tt.query)
		if tt.wantErr == "" {
			assert.NoError(t, err, tt.query)
			assert.Equal(t, tt.wantType, typ, tt.query)
			continue
		}
		require.Error(t, err, tt.query)
		assert.Contains(t, err.Error(), tt.wantErr, tt.query)
	}
}
