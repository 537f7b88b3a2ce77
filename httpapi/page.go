package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/onceflow/onceflow/feed"
)

// Every list the API serves pages the same way: ?cursor= is a string, the
// previous page's next_cursor (absent for the first page); ?limit= is from
// 1 to maxPageLimit, defaultPageLimit when absent; the answer's
// next_cursor is the next page's cursor, or null on the last page.
const (
	defaultPageLimit = feed.DefaultLimit // 20
	maxPageLimit     = feed.MaxLimit     // 100
)

// pageQuery reads a list's cursor and limit. On a bad limit it has
// answered 400 and ok is false; the list checks the cursor, which only it
// can read.
func pageQuery(w http.ResponseWriter, r *http.Request) (cursor string, limit int, ok bool) {
	q := r.URL.Query()
	limit = defaultPageLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			writeProblem(w, http.StatusBadRequest, Problem{Detail: fmt.Sprintf("limit %q is not a number from 1 to %d", v, maxPageLimit), Field: "limit"})
			return "", 0, false
		}
		limit = n
	}
	return q.Get("cursor"), limit, true
}
