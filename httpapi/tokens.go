package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/onceflow/onceflow"
)

// EnvTokensFile names the variable with the path of the API's token file.
const EnvTokensFile = "ONCEFLOW_API_TOKENS_FILE"

// hashPrefix starts the hash field of a token line.
const hashPrefix = "sha256:"

// Tokens is the set of bearer tokens the API accepts, each mapped to its
// tenant. It holds only the tokens' SHA-256 hashes, as the file does, and
// can be re-read from its file while requests are served (Reload).
//
// The file has one token per line:
//
//	# comment
//	<tenant> sha256:<64 hex digits: SHA-256 of the token>
//
// Blank lines and lines starting with '#' are skipped. A tenant may have
// several tokens (to rotate one without downtime); one token belongs to
// one tenant.
type Tokens struct {
	path    string
	current atomic.Pointer[[]token]
	// seen is the SHA-256 of the file's content as last read, loaded or
	// not (ReloadIfChanged).
	seen atomic.Pointer[[sha256.Size]byte]
}

type token struct {
	tenant string
	hash   [sha256.Size]byte
}

// LoadTokens reads the token file at path. An error names the file and the
// line at fault, never the hash on it.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Path is the file the tokens are read from.
func (t *Tokens) Path() string { return t.path }

// Len is how many tokens are accepted.
func (t *Tokens) Len() int { return len(*t.current.Load()) }

// Reload re-reads the file. On error the tokens accepted so far stay in
// force, so that a mistake in an edit does not lock every caller out.
func (t *Tokens) Reload() error {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("read API tokens (%s): %w", EnvTokensFile, err)
	}
	return t.load(data)
}

func (t *Tokens) load(data []byte) error {
	sum := sha256.Sum256(data)
	t.seen.Store(&sum)
	set, err := parseTokens(t.path, data)
	if err != nil {
		return err
	}
	t.current.Store(&set)
	return nil
}

// ReloadIfChanged re-reads the file when its content differs from what was
// last read, and says whether it did: what an operator who cannot signal
// the process relies on (a Kubernetes secret volume, a file edited through
// a deployment tool). A file that does not parse is reported once per
// change, and the tokens accepted so far stay in force. A file that cannot
// be read is an error each time, and changes nothing.
func (t *Tokens) ReloadIfChanged() (bool, error) {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return false, fmt.Errorf("read API tokens (%s): %w", EnvTokensFile, err)
	}
	if sum := sha256.Sum256(data); *t.seen.Load() == sum {
		return false, nil
	}
	return true, t.load(data)
}

func parseTokens(path string, data []byte) ([]token, error) {
	var set []token
	seen := make(map[[sha256.Size]byte]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("API token file %s line %d: %s", path, line, fmt.Sprintf(format, args...))
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, bad("has %d fields; want <tenant> sha256:<64 hex digits>", len(fields))
		}
		if err := onceflow.ValidateTenant(fields[0]); err != nil || fields[0] == "" {
			return nil, bad("%q is not a tenant name (1 to %d letters, digits, '_', '.' and '-', starting with a letter or digit)", fields[0], onceflow.MaxTenantLength)
		}
		hexHash, ok := strings.CutPrefix(fields[1], hashPrefix)
		if !ok {
			return nil, bad("the second field must start with %q (the SHA-256 of the token, never the token itself)", hashPrefix)
		}
		raw, err := hex.DecodeString(hexHash)
		if err != nil || len(raw) != sha256.Size {
			return nil, bad("the hash must be %d hex digits after %q", 2*sha256.Size, hashPrefix)
		}
		tok := token{tenant: fields[0], hash: [sha256.Size]byte(raw)}
		if first, dup := seen[tok.hash]; dup {
			return nil, bad("repeats the token of line %d; give each token one line and one tenant", first)
		}
		seen[tok.hash] = line
		set = append(set, tok)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API token file %s: %w", path, err)
	}
	return set, nil
}

// Tenant returns the tenant of the bearer token, and false when no line
// holds its hash. Every line is compared, in constant time, whatever
// matches.
func (t *Tokens) Tenant(bearer string) (string, bool) {
	sum := sha256.Sum256([]byte(bearer))
	tenant, found := "", 0
	for _, tok := range *t.current.Load() {
		if subtle.ConstantTimeCompare(sum[:], tok.hash[:]) == 1 {
			tenant, found = tok.tenant, 1
		}
	}
	return tenant, found == 1
}

// HashLine is the token file's line that gives tenant the token: what an
// operator appends to the file for a new token.
func HashLine(tenant, bearer string) string {
	sum := sha256.Sum256([]byte(bearer))
	return tenant + " " + hashPrefix + hex.EncodeToString(sum[:])
}
