package preferences_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/internal/testenv"
	"github.com/onceflow/onceflow/preferences"
)

var server *testenv.Backend

func TestMain(m *testing.M) { testenv.RunOnBoth(m, &server) }

func critical(t *testing.T) preferences.Critical {
	c, err := preferences.ParseCritical("security, billing")
	require.NoError(t, err)
	return c
}

func TestOptOutsDecidePerCategoryAndChannel(t *testing.T) {
	ctx := context.Background()
	s := preferences.New(server.Client(t), critical(t))
	sub := "user-" + t.Name()
	_, err := s.Put(ctx, "acme", sub, preferences.Preferences{OptOuts: []preferences.OptOut{
		{Category: "marketing", Channel: "email"},
		{Category: "*", Channel: "sms"},
		{Category: "news", Channel: "*"},
	}})
	require.NoError(t, err)
	all := []onceflow.Channel{onceflow.Email, onceflow.Webhook, onceflow.SMS, onceflow.Push}

	skip, err := s.Decide(ctx, "acme", sub, "marketing", all)
	require.NoError(t, err)
	assert.Equal(t, map[onceflow.Channel]string{
		onceflow.Email: `the subscriber opted out of category "marketing" on channel email; not sent`,
		onceflow.SMS:   `the subscriber opted out of category "marketing" on channel sms; not sent`,
	}, skip)

	skip, err = s.Decide(ctx, "acme", sub, "news", all)
	require.NoError(t, err)
	assert.Len(t, skip, 4, "news is off on every channel")

	skip, err = s.Decide(ctx, "acme", sub, "security", all)
	require.NoError(t, err)
	assert.Empty(t, skip, "a critical category goes out whatever the opt-outs (sms is off for every category)")

	skip, err = s.Decide(ctx, "acme", "someone-else", "marketing", all)
	require.NoError(t, err)
	assert.Empty(t, skip, "a subscriber without preferences gets everything")
}

func TestPreferencesAreTenantScoped(t *testing.T) {
	ctx := context.Background()
	s := preferences.New(server.Client(t), nil)
	sub := "user-" + t.Name()
	_, err := s.Put(ctx, "acme", sub, preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "marketing", Channel: "email"}}})
	require.NoError(t, err)
	for _, tenant := range []string{"globex", ""} {
		p, err := s.Get(ctx, tenant, sub)
		require.NoError(t, err)
		assert.Empty(t, p.OptOuts, "tenant %q sees none of acme's", tenant)
	}
	assert.Equal(t, "onceflow:{prefs:acme@"+sub+"}:optouts", preferences.Key("acme", sub))
	assert.Equal(t, "onceflow:{prefs:"+sub+"}:optouts", preferences.Key("", sub))
}

func TestPutReplacesAndAddKeepsTheRest(t *testing.T) {
	ctx := context.Background()
	s := preferences.New(server.Client(t), nil)
	sub := "user-" + t.Name()
	stored, err := s.Put(ctx, "", sub, preferences.Preferences{OptOuts: []preferences.OptOut{
		{Category: "news", Channel: "sms"}, {Category: "marketing", Channel: "email"}, {Category: "news", Channel: "sms"},
	}})
	require.NoError(t, err)
	assert.Equal(t, []preferences.OptOut{{Category: "marketing", Channel: "email"}, {Category: "news", Channel: "sms"}}, stored.OptOuts, "sorted, without repeats")

	require.NoError(t, s.Add(ctx, "", sub, preferences.OptOut{Category: "promo", Channel: "push"}))
	require.NoError(t, s.Add(ctx, "", sub, preferences.OptOut{Category: "promo", Channel: "push"}))
	p, err := s.Get(ctx, "", sub)
	require.NoError(t, err)
	assert.Len(t, p.OptOuts, 3)

	_, err = s.Put(ctx, "", sub, preferences.Preferences{})
	require.NoError(t, err)
	p, err = s.Get(ctx, "", sub)
	require.NoError(t, err)
	assert.NotNil(t, p.OptOuts, "[] in JSON, not null")
	assert.Empty(t, p.OptOuts)
	keys, err := testenv.Keys(ctx, server.Client(t), preferences.Key("", sub))
	require.NoError(t, err)
	assert.Empty(t, keys, "no opt-outs, no key")
}

func TestBadPreferencesNameTheFieldAndChangeNothing(t *testing.T) {
	ctx := context.Background()
	s := preferences.New(server.Client(t), critical(t))
	sub := "user-" + t.Name()
	_, err := s.Put(ctx, "", sub, preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "marketing", Channel: "email"}}})
	require.NoError(t, err)
	for field, bad := range map[string]preferences.OptOut{
		"opt_outs[1].channel":  {Category: "marketing", Channel: "fax"},
		"opt_outs[1].category": {Category: "Marketing!", Channel: "email"},
	} {
		_, err := s.Put(ctx, "", sub, preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "news", Channel: "*"}, bad}})
		var ve *onceflow.ValidationError
		require.True(t, errors.As(err, &ve), "%v", err)
		assert.Equal(t, field, ve.Field)
	}
	_, err = s.Put(ctx, "", sub, preferences.Preferences{OptOuts: []preferences.OptOut{{Category: "security", Channel: "email"}}})
	var ve *onceflow.ValidationError
	require.True(t, errors.As(err, &ve))
	assert.Equal(t, "opt_outs[0].category", ve.Field)
	assert.Contains(t, ve.Reason, "critical")
	assert.Error(t, s.Add(ctx, "", sub, preferences.OptOut{Category: "billing", Channel: "*"}), "no link can opt out of a critical category either")

	p, err := s.Get(ctx, "", sub)
	require.NoError(t, err)
	assert.Equal(t, []preferences.OptOut{{Category: "marketing", Channel: "email"}}, p.OptOuts, "refused writes changed nothing")

	_, err = s.Get(ctx, "", "ada@example.com")
	assert.Error(t, err, "an e-mail address is not a subscriber id")
}

func TestDecodeNamesTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{"opt_outs":[{"category":"x","channel":"email","extra":1}]}`: "extra",
		`{"opt_outs":"none"}`:           "opt_outs",
		`{"optouts":[]}`:                "optouts",
		``:                              "preferences",
		`{"opt_outs":[]} {}`:            "preferences",
		`{"opt_outs":[{"category":5}]}`: "opt_outs.category",
	} {
		_, err := preferences.Decode(strings.NewReader(body))
		var ve *onceflow.ValidationError
		require.True(t, errors.As(err, &ve), "%s: %v", body, err)
		assert.Equal(t, field, ve.Field, body)
	}
}

func TestCriticalCategoriesFromTheEnvironment(t *testing.T) {
	_, err := preferences.ParseCritical("security,Billing")
	assert.ErrorContains(t, err, preferences.EnvCriticalCategories)
	c, err := preferences.ParseCritical("")
	require.NoError(t, err)
	assert.Empty(t, c)
}

func TestStoreRefusesWhenRedisIsDown(t *testing.T) {
	server.OnlyOnce(t)
	r, err := testenv.StartRedis(t.TempDir())
	require.NoError(t, err)
	rdb := r.Client(t)
	r.Cleanup()
	s := preferences.New(rdb, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.Decide(ctx, "", "user-1", "marketing", []onceflow.Channel{onceflow.Email})
	assert.Error(t, err, "no answer is not 'allowed'")
}

// BenchmarkDecide measures the read a categorised notification costs at
// its send time: one SMEMBERS of the subscriber's opt-outs.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	s := preferences.New(server.Client(b), nil)
	_, err := s.Put(ctx, "acme", "user-bench", preferences.Preferences{OptOuts: []preferences.OptOut{
		{Category: "marketing", Channel: "email"}, {Category: "*", Channel: "sms"}, {Category: "news", Channel: "*"},
	}})
	require.NoError(b, err)
	channels := []onceflow.Channel{onceflow.Email, onceflow.Webhook}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Decide(ctx, "acme", "user-bench", "marketing", channels); err != nil {
			b.Fatal(err)
		}
	}
}
