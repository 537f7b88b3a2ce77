package codec_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/codec"
)

// newKey returns a "<id>:<base64>" entry with a random key.
func newKey(t testing.TB, id string) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}

func keys(t testing.TB, entries ...string) *codec.Keys {
	k, err := codec.ParseKeys(strings.Join(entries, ","))
	require.NoError(t, err)
	return k
}

var secretNotification = onceflow.Notification{
	Key:        "order-1",
	Subject:    "Your parcel for Mrs Quimby",
	Body:       "Left at 12 Acacia Avenue",
	Deliveries: []onceflow.Delivery{{Channel: onceflow.Email, To: "quimby@example.com"}},
}

func TestRoundTripEncryptsAndRestores(t *testing.T) {
	dc := codec.DataConverter(keys(t, newKey(t, "k1")))
	p, err := dc.ToPayload(secretNotification)
	require.NoError(t, err)

	assert.Equal(t, codec.Encoding, string(p.Metadata[converter.MetadataEncoding]))
	assert.Equal(t, "k1", string(p.Metadata[codec.MetadataKeyID]))
	for _, s := range []string{"Quimby", "Acacia", "quimby@example.com", "parcel", "json/plain"} {
		assert.NotContains(t, p.String(), s, "no plaintext, not even the inner encoding")
	}
	var back onceflow.Notification
	require.NoError(t, dc.FromPayload(p, &back))
	assert.Equal(t, secretNotification, back)

	again, err := dc.ToPayload(secretNotification)
	require.NoError(t, err)
	assert.NotEqual(t, p.Data, again.Data, "a fresh nonce for every payload")
}

func TestRotationOldKeyDecryptsNewKeyEncrypts(t *testing.T) {
	old, fresh := newKey(t, "2025"), newKey(t, "2026")
	before := codec.DataConverter(keys(t, old))
	p, err := before.ToPayload(secretNotification)
	require.NoError(t, err)

	after := codec.DataConverter(keys(t, fresh, old))
	var back onceflow.Notification
	require.NoError(t, after.FromPayload(p, &back), "a history written under the old key still reads")
	assert.Equal(t, secretNotification, back)

	q, err := after.ToPayload(secretNotification)
	require.NoError(t, err)
	assert.Equal(t, "2026", string(q.Metadata[codec.MetadataKeyID]), "the first key encrypts")
	require.Error(t, before.FromPayload(q, &back), "the old key alone cannot read what the new one wrote")
}

func TestUnknownKeyIDIsAnErrorNamingIt(t *testing.T) {
	p, err := codec.New(keys(t, newKey(t, "gone"))).Encode([]*commonpb.Payload{{Data: []byte("x")}})
	require.NoError(t, err)
	_, err = codec.New(keys(t, newKey(t, "k2"))).Decode(p)
	require.ErrorIs(t, err, codec.ErrUnknownKey)
	assert.Contains(t, err.Error(), `"gone"`)
	assert.Contains(t, err.Error(), codec.EnvKeys)
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	k := keys(t, newKey(t, "k1"), newKey(t, "k2"))
	c := codec.New(k)
	encode := func() *commonpb.Payload {
		p, err := c.Encode([]*commonpb.Payload{{Data: []byte("Left at 12 Acacia Avenue")}})
		require.NoError(t, err)
		return p[0]
	}
	tamper := map[string]func(p *commonpb.Payload){
		"ciphertext bit":  func(p *commonpb.Payload) { p.Data[len(p.Data)-20] ^= 1 },
		"nonce bit":       func(p *commonpb.Payload) { p.Data[0] ^= 1 },
		"truncated":       func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"relabelled key":  func(p *commonpb.Payload) { p.Metadata[codec.MetadataKeyID] = []byte("k2") },
		"appended a byte": func(p *commonpb.Payload) { p.Data = append(p.Data, 0) },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			p := encode()
			f(p)
			_, err := c.Decode([]*commonpb.Payload{p})
			require.ErrorIs(t, err, codec.ErrTampered)
		})
	}
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload("written before keys were set")
	require.NoError(t, err)
	var s string
	require.NoError(t, codec.DataConverter(keys(t, newKey(t, "k1"))).FromPayload(plain, &s))
	assert.Equal(t, "written before keys were set", s)
}

func TestFailureMessagesAreEncrypted(t *testing.T) {
	fc := codec.FailureConverter(keys(t, newKey(t, "k1")))
	f := fc.ErrorToFailure(fmt.Errorf("smtp: 550 no such user quimby@example.com"))
	assert.NotContains(t, f.String(), "quimby")
	assert.Contains(t, fc.FailureToError(f).Error(), "quimby@example.com")
}

func TestWithoutKeysTheConvertersAreTemporalsDefaults(t *testing.T) {
	assert.Equal(t, converter.GetDefaultDataConverter(), codec.DataConverter(nil))
	assert.Equal(t, temporal.GetDefaultFailureConverter(), codec.FailureConverter(nil))
}

func TestParseKeys(t *testing.T) {
	k, err := codec.ParseKeys("")
	require.NoError(t, err)
	assert.Nil(t, k, "no keys: payloads stay unencrypted")

	good := newKey(t, "a")
	k, err = codec.ParseKeys(" " + good + " , " + newKey(t, "b"))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, k.IDs())
	secret := strings.TrimPrefix(good, "a:")
	for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v", k, k, k)} {
		assert.NotContains(t, s, secret)
	}

	short := "c:" + base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	cases := map[string]struct{ in, want string }{
		"no colon":     {good + ",c" + secret, "entry 2 is not"},
		"empty id":     {":" + secret, "entry 1: key ID is empty"},
		"bad id":       {"a b:" + secret, `entry 1: key ID "a b"`},
		"duplicate id": {good + "," + good, `entry 2 (key ID "a"): the key ID is used twice`},
		"not base64":   {"c:" + secret + "!!", `entry 1 (key ID "c"): the key is not valid base64`},
		"16 bytes":     {short, `entry 1 (key ID "c"): the key is 16 bytes, AES-256 needs 32`},
		"empty entry":  {good + ",", "entry 2 is not"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := codec.ParseKeys(c.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), codec.EnvKeys)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), secret, "the error never echoes key material")
			assert.NotContains(t, err.Error(), strings.TrimPrefix(short, "c:"))
		})
	}
}
