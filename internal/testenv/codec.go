package testenv

// CodecKeys is a fixed ONCEFLOW_CODEC_KEYS value for tests, so that
// histories recorded with the codec (workflows/testdata/codec_*.json) replay
// with the same key. Never use it outside tests.
const CodecKeys = "test-1:b25jZWZsb3ctdGVzdC1jb2RlYy1rZXktMzItYnl0ZXM="
