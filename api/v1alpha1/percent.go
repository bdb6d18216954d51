package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePercent reads a percentage from 0% to 100%, as a step writes its traffic or its
// replicas: "20%" is 20.
func ParsePercent(s string) (int32, error) {
	digits, ok := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
	}
	return int32(n), nil
}
