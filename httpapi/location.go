package httpapi

import (
	"net/url"
	"strings"
)

// statusPath is the path of a notification's status, the Location of a
// POST's answer; broadcastPath is a broadcast's. Keys may hold any printable ASCII but space and '@', so
// the key is escaped as one path segment: '/', '?', '#' and '%' become
// %2F, %3F, %23 and %25, and a GET of the path, verbatim, reaches the
// {key...} route with the key intact (ServeMux unescapes wildcards). A key
// that is all dots is escaped too: "/v1/notifications/.." would otherwise
// be cleaned into another path.
func statusPath(key string) string { return "/v1/notifications/" + keySegment(key) }

func broadcastPath(key string) string { return "/v1/broadcasts/" + keySegment(key) }

func keySegment(key string) string {
	seg := url.PathEscape(key)
	if strings.Trim(seg, ".") == "" {
		seg = strings.ReplaceAll(seg, ".", "%2E")
	}
	return seg
}
