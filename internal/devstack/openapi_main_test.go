package devstack_test

import (
	"os"
	"testing"

	"github.com/onceflow/onceflow/httpapi"
	"github.com/onceflow/onceflow/internal/openapitest"
)

// TestMain checks every API exchange the tests make through
// http.DefaultClient against the OpenAPI document (openapitest).
func TestMain(m *testing.M) {
	openapitest.CheckDefaultClient(httpapi.OpenAPI)
	os.Exit(m.Run())
}
