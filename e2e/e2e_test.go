package e2e_test

import (
	"testing"

	"github.com/onceflow/onceflow/internal/teststack"
)

var servers teststack.Servers

func TestMain(m *testing.M) { teststack.Main(m, &servers) }
