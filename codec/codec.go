// Package codec encrypts the payloads Onceflow hands to Temporal, so that no
// recipient, subject, body or template data is stored in clear in Temporal's
// history, visibility store or database.
//
// Every Temporal client that starts, runs or reads notifications (workers,
// the API, the CLI, the Go client, the dev stack) is given the same keys:
//
//	client.Options{DataConverter: codec.DataConverter(keys), FailureConverter: codec.FailureConverter(keys)}
//
// The protocol, and what it guarantees:
//
//   - Each tenant has keys of its own: for each installation key, the key
//     HKDF-SHA256 derives from it with the tenant's name in its info. A
//     payload is serialized (protobuf) and sealed with AES-256-GCM under
//     the first installation key's key for the tenant of the workflow it
//     belongs to (the SDK names the workflow: WithSerializationContext;
//     Onceflow's workflow IDs carry the tenant), with a random 12-byte
//     nonce prepended. Its metadata says "encoding: binary/encrypted",
//     names the key in "encryption-key-id" and the tenant in
//     "encryption-tenant" ("" for the single tenant); both are also GCM's
//     additional data, so a payload cannot be relabelled to another key or
//     another tenant without failing authentication.
//   - Decoding uses the key the payload names, derived for the tenant it
//     names, so a history written under an old key still reads after a
//     rotation while that key stays in the list, and a process with the
//     keys (a worker, the API, the CLI) reads every tenant's payloads.
//     A payload naming a key that is not in the list, or whose ciphertext
//     was altered, is an error: never a silent pass-through.
//   - Legacy payloads, sealed before tenants had keys of their own, carry
//     no "encryption-tenant": they are sealed under the installation key
//     itself, with the key ID as additional data, and still decode. No
//     tenant's key opens them, and a tenant's payload stripped of its
//     tenant does not open as one.
//   - Payloads that are not encrypted (written before keys were set) are
//     decoded unchanged.
//   - Random 96-bit nonces are safe for about 2^32 payloads per key and
//     tenant; rotate keys well before that.
//
// What the codec does not cover: workflow IDs (the notification key), search
// attributes (OnceflowKey, OnceflowChannels, OnceflowStatus) and task queue
// names are stored in clear; Onceflow puts no personal data in them.
// Failure messages are covered only with FailureConverter.
//
// Handler serves Temporal's remote codec protocol, so that the Web UI can
// show decrypted payloads to those allowed to call it: each caller only
// its own tenant's.
package codec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow"
)

// Metadata that an encrypted payload carries.
const (
	// Encoding is the value of the payload's "encoding" metadata.
	Encoding = "binary/encrypted"
	// MetadataKeyID is the metadata field that names the encrypting key.
	MetadataKeyID = "encryption-key-id"
	// MetadataTenant is the metadata field that names the tenant whose key
	// sealed the payload ("" for the single tenant). A payload without it
	// was sealed under the installation key itself, before tenants had
	// keys of their own.
	MetadataTenant = "encryption-tenant"
)

// ErrUnknownKey is returned (wrapped) when a payload names a key ID that is
// not among the keys.
var ErrUnknownKey = errors.New("unknown encryption key ID")

// ErrTampered is returned (wrapped) when a payload fails authentication: its
// ciphertext, nonce, key ID or tenant was altered, or another key of that
// ID encrypted it.
var ErrTampered = errors.New("payload failed authentication")

// Codec is a converter.PayloadCodec that encrypts with AES-256-GCM under
// the key of one tenant, and decrypts every tenant's payloads.
type Codec struct {
	keys   *Keys
	tenant string
}

var (
	_ converter.PayloadCodec                             = (*Codec)(nil)
	_ converter.PayloadCodecWithSerializationContext     = (*Codec)(nil)
	_ converter.FailureConverterWithSerializationContext = (*failureConverter)(nil)
)

// New returns a Codec that encrypts with keys' first key for the single
// tenant "", or, once the SDK gives it the workflow its payloads belong to
// (WithSerializationContext), for that workflow's tenant.
func New(keys *Keys) *Codec { return &Codec{keys: keys} }

// ForTenant returns a Codec that encrypts for tenant.
func (c *Codec) ForTenant(tenant string) *Codec { return &Codec{keys: c.keys, tenant: tenant} }

// WithSerializationContext returns a Codec that encrypts for the tenant of
// the workflow whose payloads the SDK is about to encode: its input,
// result, memo, signals, queries, child workflows and continue-as-new, its
// activities' inputs, results and heartbeats. Onceflow's workflow IDs
// carry their tenant (onceflow.WorkflowTenant).
func (c *Codec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	switch sc := sc.(type) {
	case converter.WorkflowSerializationContext:
		return c.ForTenant(onceflow.WorkflowTenant(sc.WorkflowID))
	case converter.ActivitySerializationContext:
		return c.ForTenant(onceflow.WorkflowTenant(sc.WorkflowID))
	}
	return c
}

// DataConverter is Temporal's default data converter with payloads
// encrypted by keys, each for the tenant of the workflow it belongs to;
// with nil keys (none configured), the default itself.
func DataConverter(keys *Keys) converter.DataConverter {
	if keys == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), New(keys))
}

// FailureConverter moves failure messages and stack traces into an
// encrypted payload, since an error may quote the data it failed on; with
// nil keys, it is Temporal's default failure converter.
func FailureConverter(keys *Keys) converter.FailureConverter {
	if keys == nil {
		return temporal.GetDefaultFailureConverter()
	}
	return newFailureConverter(DataConverter(keys))
}

// failureConverter is Temporal's default failure converter over an
// encrypting data converter, given the serialization context too, so that
// a failure is sealed for its workflow's tenant like any other payload.
type failureConverter struct {
	dc converter.DataConverter
	converter.FailureConverter
}

func newFailureConverter(dc converter.DataConverter) *failureConverter {
	return &failureConverter{dc: dc, FailureConverter: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})}
}

func (f *failureConverter) WithSerializationContext(sc converter.SerializationContext) converter.FailureConverter {
	return newFailureConverter(converter.WithDataConverterSerializationContext(f.dc, sc))
}

// additionalData is what GCM authenticates beside the ciphertext: the key
// ID, and for a tenant's payload the tenant, so that neither can be
// relabelled. Key IDs are printable ASCII and tenant names hold no NUL.
func additionalData(id string, tenant string, scoped bool) []byte {
	if !scoped {
		return []byte(id)
	}
	return []byte("onceflow codec v2\x00" + id + "\x00" + tenant)
}

// Encode encrypts each payload with the first key, derived for c's tenant.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.keys.encrypting()
	aead, err := k.forTenant(c.tenant)
	if err != nil {
		return payloads, err
	}
	ad := additionalData(k.id, c.tenant, true)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: serialize payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(k.id),
				MetadataTenant:             []byte(c.tenant),
			},
			Data: aead.Seal(nonce, nonce, plain, ad),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key it names, derived
// for the tenant it names (or the installation key itself for a payload
// that names none), whatever c's tenant, and returns other payloads
// unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !encrypted(p) {
			out[i] = p
			continue
		}
		decoded, err := c.open(p)
		if err != nil {
			return payloads, err
		}
		out[i] = decoded
	}
	return out, nil
}

func encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding
}

// payloadTenant is the tenant an encrypted payload was sealed for, and
// false for a legacy payload sealed under the installation key.
func payloadTenant(p *commonpb.Payload) (string, bool) {
	t, ok := p.GetMetadata()[MetadataTenant]
	return string(t), ok
}

func (c *Codec) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	k, ok := c.keys.byID(id)
	if !ok {
		return nil, fmt.Errorf("codec: payload encrypted with key ID %q: %w (%s has %s)",
			id, ErrUnknownKey, EnvKeys, strings.Join(c.keys.IDs(), ", "))
	}
	tenant, scoped := payloadTenant(p)
	aead := k.aead
	if scoped {
		var err error
		if aead, err = k.forTenant(tenant); err != nil {
			return nil, err
		}
	}
	n := aead.NonceSize()
	if len(p.GetData()) < n+aead.Overhead() {
		return nil, fmt.Errorf("codec: payload with key ID %q: %w (too short)", id, ErrTampered)
	}
	plain, err := aead.Open(nil, p.Data[:n], p.Data[n:], additionalData(id, tenant, scoped))
	if err != nil {
		return nil, fmt.Errorf("codec: payload with key ID %q: %w", id, ErrTampered)
	}
	var decoded commonpb.Payload
	if err := proto.Unmarshal(plain, &decoded); err != nil {
		return nil, fmt.Errorf("codec: payload with key ID %q: decrypted data is not a payload: %w", id, err)
	}
	return &decoded, nil
}
