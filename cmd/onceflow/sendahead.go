package main

// EnvMaxSendAhead names the variable that bounds how far ahead send_at may
// be for notifications that `onceflow api` and `onceflow send` accept
// (httpapi.Config.MaxSendAhead).
const EnvMaxSendAhead = "ONCEFLOW_MAX_SEND_AHEAD"
