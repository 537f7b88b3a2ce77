package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// EnvKeys names the variable that holds the keys:
// "<key id>:<base64 of 32 bytes>", comma-separated. The first key encrypts;
// every key decrypts.
const EnvKeys = "ONCEFLOW_CODEC_KEYS"

// keySize is AES-256's key length.
const keySize = 32

// Keys are the installation's AES-256-GCM keys, from which each tenant's
// keys are derived. The first encrypts new payloads; all of them decrypt,
// so a key is rotated, for every tenant at once, by putting a new one first
// and keeping the old one until no history needs it.
//
// Keys never prints its key material: String shows only the key IDs.
type Keys struct {
	keys []key
}

type key struct {
	id string
	// secret is the installation key: tenants' keys are derived from it.
	secret []byte
	// aead seals under secret itself, as payloads were before tenants had
	// keys of their own; it only opens those now.
	aead cipher.AEAD
}

// LoadKeys reads EnvKeys through getenv. It returns nil, and no error, when
// the variable is unset or empty: payloads are then not encrypted.
func LoadKeys(getenv func(string) string) (*Keys, error) {
	return ParseKeys(getenv(EnvKeys))
}

// ParseKeys parses keys in EnvKeys's format. It returns nil, and no error,
// for an empty s. Errors name the variable and the entry at fault by its
// position and key ID, never its key material.
func ParseKeys(s string) (*Keys, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	k := &Keys{}
	seen := make(map[string]bool)
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		where := fmt.Sprintf("%s entry %d", EnvKeys, i+1)
		id, material, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf(`%s is not "<key id>:<base64 of %d bytes>"`, where, keySize)
		}
		if err := validID(id); err != nil {
			return nil, fmt.Errorf("%s: key ID %w", where, err)
		}
		where += fmt.Sprintf(" (key ID %q)", id)
		if seen[id] {
			return nil, fmt.Errorf("%s: the key ID is used twice", where)
		}
		seen[id] = true
		secret, err := base64.StdEncoding.DecodeString(material)
		if err != nil {
			return nil, fmt.Errorf("%s: the key is not valid base64", where)
		}
		if len(secret) != keySize {
			return nil, fmt.Errorf("%s: the key is %d bytes, AES-256 needs %d (e.g. head -c %d /dev/urandom | base64)", where, len(secret), keySize, keySize)
		}
		aead, err := newAEAD(secret)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		k.keys = append(k.keys, key{id: id, secret: secret, aead: aead})
	}
	return k, nil
}

// validID accepts the printable ASCII IDs that travel in payload metadata.
func validID(id string) error {
	if id == "" {
		return fmt.Errorf("is empty")
	}
	if len(id) > 64 {
		return fmt.Errorf("is longer than 64 characters")
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("%q has a character other than printable ASCII", id)
		}
	}
	return nil
}

// IDs lists the key IDs, the encrypting one first.
func (k *Keys) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.id
	}
	return ids
}

// String names the keys by ID only.
func (k *Keys) String() string {
	return fmt.Sprintf("codec keys %s (%s encrypts)", strings.Join(k.IDs(), ", "), k.keys[0].id)
}

// GoString keeps %#v from printing key material.
func (k *Keys) GoString() string { return k.String() }

func (k *Keys) encrypting() key { return k.keys[0] }

// tenantInfo is HKDF's info for a tenant's key: a label for this use of
// the installation key, and the tenant. Tenant names hold no NUL.
const tenantInfo = "onceflow codec tenant key v1\x00"

// forTenant is the AES-256-GCM key of tenant's payloads under k:
// HKDF-SHA256 of the installation key with the tenant in its info, so that
// no tenant's key opens another's payloads, and none opens a legacy
// payload sealed under the installation key itself.
func (k key) forTenant(tenant string) (cipher.AEAD, error) {
	derived, err := hkdf.Key(sha256.New, k.secret, nil, tenantInfo+tenant, keySize)
	if err != nil {
		return nil, fmt.Errorf("codec: derive the key of key ID %q for a tenant: %w", k.id, err)
	}
	return newAEAD(derived)
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (k *Keys) byID(id string) (key, bool) {
	for _, key := range k.keys {
		if key.id == id {
			return key, true
		}
	}
	return key{}, false
}
