package codec_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/broadcast"
	"github.com/onceflow/onceflow/codec"
	"github.com/onceflow/onceflow/digest"
	"github.com/onceflow/onceflow/workflows"
)

// forWorkflow is dc as the SDK hands it the payloads of workflow id.
func forWorkflow(dc converter.DataConverter, id string) converter.DataConverter {
	return converter.WithDataConverterSerializationContext(dc, converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: id})
}

// sealFor is secretNotification as the SDK encodes it for tenant's
// notification: the workflow's input.
func sealFor(t *testing.T, k *codec.Keys, tenant string) *commonpb.Payload {
	t.Helper()
	p, err := forWorkflow(codec.DataConverter(k), workflows.ID(onceflow.ScopedKey(tenant, "order-1"))).ToPayload(secretNotification)
	require.NoError(t, err)
	return p
}

// legacySeal seals payload as the codec did before tenants had keys of
// their own: under the installation key of entry ("<id>:<base64>") itself,
// with the key ID as additional data, and no tenant in the metadata.
func legacySeal(t *testing.T, entry string, payload *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	id, material, _ := strings.Cut(entry, ":")
	secret, err := base64.StdEncoding.DecodeString(material)
	require.NoError(t, err)
	block, err := aes.NewCipher(secret)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	plain, err := proto.Marshal(payload)
	require.NoError(t, err)
	nonce := make([]byte, aead.NonceSize())
	_, err = rand.Read(nonce)
	require.NoError(t, err)
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(codec.Encoding), codec.MetadataKeyID: []byte(id)},
		Data:     aead.Seal(nonce, nonce, plain, []byte(id)),
	}
}

func TestPayloadsAreSealedForTheirWorkflowsTenant(t *testing.T) {
	k := keys(t, newKey(t, "k1"))
	dc := codec.DataConverter(k)
	ids := map[string]string{
		workflows.ID(onceflow.ScopedKey("acme", "order-1")):        "acme",
		broadcast.WorkflowID(onceflow.ScopedKey("globex", "sale")): "globex",
		digest.ID("acme", "sub-1", "daily"):                        "acme",
		workflows.ID(onceflow.ScopedKey("", "order-1")):            "",
		digest.ID("", "sub-1", "daily"):                            "",
	}
	for id, tenant := range ids {
		t.Run(id, func(t *testing.T) {
			p, err := forWorkflow(dc, id).ToPayload(secretNotification)
			require.NoError(t, err)
			assert.Equal(t, "k1", string(p.Metadata[codec.MetadataKeyID]))
			require.Contains(t, p.Metadata, codec.MetadataTenant)
			assert.Equal(t, tenant, string(p.Metadata[codec.MetadataTenant]))

			act := converter.WithDataConverterSerializationContext(dc, converter.ActivitySerializationContext{WorkflowID: id, ActivityType: "Deliver"})
			q, err := act.ToPayload(secretNotification)
			require.NoError(t, err)
			assert.Equal(t, tenant, string(q.Metadata[codec.MetadataTenant]), "an activity's payloads are its workflow's tenant's")

			// A process with the keys reads every tenant's payloads,
			// whatever workflow it reads them for.
			for _, reader := range []converter.DataConverter{dc, forWorkflow(dc, "notification/other@k")} {
				var back onceflow.Notification
				require.NoError(t, reader.FromPayload(p, &back))
				assert.Equal(t, secretNotification, back)
			}
		})
	}
	without, err := dc.ToPayload(secretNotification)
	require.NoError(t, err)
	assert.Equal(t, "", string(without.Metadata[codec.MetadataTenant]), "without a workflow, for the single tenant")
}

func TestEachTenantsKeyIsItsOwn(t *testing.T) {
	entry := newKey(t, "k1")
	k := keys(t, entry)
	c := codec.New(k)
	relabel := func(p *commonpb.Payload, tenant string) *commonpb.Payload {
		q := proto.Clone(p).(*commonpb.Payload)
		q.Metadata[codec.MetadataTenant] = []byte(tenant)
		return q
	}
	strip := func(p *commonpb.Payload) *commonpb.Payload {
		q := proto.Clone(p).(*commonpb.Payload)
		delete(q.Metadata, codec.MetadataTenant)
		return q
	}
	acme := sealFor(t, k, "acme")
	single := sealFor(t, k, "")
	legacy := legacySeal(t, entry, &commonpb.Payload{Data: []byte("Left at 12 Acacia Avenue")})
	cases := map[string]*commonpb.Payload{
		"acme's relabelled as globex's":        relabel(acme, "globex"),
		"acme's relabelled as the single's":    relabel(acme, ""),
		"the single's relabelled as acme's":    relabel(single, "acme"),
		"acme's passed off as legacy":          strip(acme),
		"the single's passed off as legacy":    strip(single),
		"a legacy one claimed by acme":         relabel(legacy, "acme"),
		"a legacy one claimed by the single's": relabel(legacy, ""),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decode([]*commonpb.Payload{p})
			require.ErrorIs(t, err, codec.ErrTampered)
		})
	}
}

func TestLegacyPayloadsStillDecode(t *testing.T) {
	old, fresh := newKey(t, "2025"), newKey(t, "2026")
	legacy := legacySeal(t, old, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"Left at 12 Acacia Avenue"`)})
	var s string
	require.NoError(t, codec.DataConverter(keys(t, fresh, old)).FromPayload(legacy, &s), "after a rotation too")
	assert.Equal(t, "Left at 12 Acacia Avenue", s)
}

func TestFailuresAreSealedForTheirWorkflowsTenant(t *testing.T) {
	k := keys(t, newKey(t, "k1"))
	fc := converter.WithFailureConverterSerializationContext(codec.FailureConverter(k),
		converter.WorkflowSerializationContext{WorkflowID: workflows.ID(onceflow.ScopedKey("acme", "order-1"))})
	f := fc.ErrorToFailure(errors.New("smtp: 550 no such user quimby@example.com"))
	attrs := f.GetEncodedAttributes()
	require.NotNil(t, attrs)
	assert.Equal(t, "acme", string(attrs.Metadata[codec.MetadataTenant]))
	assert.NotContains(t, f.String(), "quimby")
	assert.Contains(t, codec.FailureConverter(k).FailureToError(f).Error(), "quimby@example.com")
}
