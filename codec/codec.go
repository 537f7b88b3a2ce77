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
//   - A payload is serialized (protobuf) and sealed with AES-256-GCM under the
//     first key, with a random 12-byte nonce prepended. Its metadata says
//     "encoding: binary/encrypted" and names the key in "encryption-key-id";
//     the key ID is also GCM's additional data, so a payload cannot be
//     relabelled to another key without failing authentication.
//   - Decoding uses the key the payload names, so a history written under an
//     old key still reads after a rotation while that key stays in the list.
//     A payload naming a key that is not in the list, or whose ciphertext was
//     altered, is an error: never a silent pass-through.
//   - Payloads that are not encrypted (written before keys were set) are
//     decoded unchanged.
//   - Random 96-bit nonces are safe for about 2^32 payloads per key; rotate
//     keys well before that.
//
// What the codec does not cover: workflow IDs (the notification key), search
// attributes (OnceflowKey, OnceflowChannels, OnceflowStatus) and task queue
// names are stored in clear; Onceflow puts no personal data in them.
// Failure messages are covered only with FailureConverter.
//
// Handler serves Temporal's remote codec protocol, so that the Web UI can
// show decrypted payloads to those allowed to call it.
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
)

// Metadata that an encrypted payload carries.
const (
	// Encoding is the value of the payload's "encoding" metadata.
	Encoding = "binary/encrypted"
	// MetadataKeyID is the metadata field that names the encrypting key.
	MetadataKeyID = "encryption-key-id"
)

// ErrUnknownKey is returned (wrapped) when a payload names a key ID that is
// not among the keys.
var ErrUnknownKey = errors.New("unknown encryption key ID")

// ErrTampered is returned (wrapped) when a payload fails authentication: its
// ciphertext, nonce or key ID was altered, or another key of that ID
// encrypted it.
var ErrTampered = errors.New("payload failed authentication")

// Codec is a converter.PayloadCodec that encrypts with AES-256-GCM.
type Codec struct {
	keys *Keys
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a Codec that encrypts with keys' first key.
func New(keys *Keys) *Codec { return &Codec{keys: keys} }

// DataConverter is Temporal's default data converter with payloads
// encrypted by keys; with nil keys (none configured), the default itself.
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
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(keys),
		EncodeCommonAttributes: true,
	})
}

// Encode encrypts each payload with the first key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.keys.encrypting()
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: serialize payload: %w", err)
		}
		nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(k.id),
			},
			Data: k.aead.Seal(nonce, nonce, plain, []byte(k.id)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key it names and returns
// other payloads unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		k, ok := c.keys.byID(id)
		if !ok {
			return payloads, fmt.Errorf("codec: payload encrypted with key ID %q: %w (%s has %s)",
				id, ErrUnknownKey, EnvKeys, strings.Join(c.keys.IDs(), ", "))
		}
		n := k.aead.NonceSize()
		if len(p.GetData()) < n+k.aead.Overhead() {
			return payloads, fmt.Errorf("codec: payload with key ID %q: %w (too short)", id, ErrTampered)
		}
		plain, err := k.aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload with key ID %q: %w", id, ErrTampered)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return payloads, fmt.Errorf("codec: payload with key ID %q: decrypted data is not a payload: %w", id, err)
		}
		out[i] = &decoded
	}
	return out, nil
}
