package api

// Kinds of error replies: the value of Error.Kind. They are part of the wire contract: clients
// switch on them, so a kind never changes meaning. Each name is its string in Go's spelling; the
// code in brackets is the Error.Code it comes with. subjects.md lists the same kinds in its
// table of error kinds.

// Kinds of a request the service could not read. The request was not processed; do not send
// it again as it is.
const (
	// KindEmptyRequest (400): the request has no body.
	KindEmptyRequest = "empty_request"
	// KindRequestTooLarge (400): the body is over the service's -max-request-bytes; details
	// bytes (the body's size) and max_bytes (the limit).
	KindRequestTooLarge = "request_too_large"
	// KindMalformedJSON (400): the body is not one JSON object (invalid JSON, invalid UTF-8,
	// trailing data, or a value that is not an object, null included).
	KindMalformedJSON = "malformed_json"
	// KindUnknownField (400): Field names a member the request does not have (names are
	// case-sensitive).
	KindUnknownField = "unknown_field"
	// KindDuplicateField (400): Field names a member given more than once.
	KindDuplicateField = "duplicate_field"
	// KindMissingField (400): Field names a required member that is absent or empty.
	KindMissingField = "missing_field"
	// KindInvalidField (400): Field names a member (or request header) with a value of the wrong
	// JSON type or an invalid value; details expected and got for a wrong type, max for a List
	// limit out of range, max_clock_skew for a timestamp too far from the service's clock.
	KindInvalidField = "invalid_field"
)

// Kinds of a request for a resource that does not exist.
const (
	// KindNotRegistered (404): a command for a resource that was never registered.
	KindNotRegistered = "not_registered"
	// KindNotFound (404): a query for a resource that does not exist (or did not at the
	// sequence or time asked for).
	KindNotFound = "not_found"
)

// Kinds of a command refused by a rule of the domain. Nothing was written; the refusal is the
// command's outcome, which a re-send with the same command id gets again.
const (
	// KindAlreadyRegistered (409): register for a resource that is already registered.
	KindAlreadyRegistered = "already_registered"
	// KindDecommissioned (409): a command for a decommissioned resource (the status is terminal).
	KindDecommissioned = "decommissioned"
	// KindInvalidTransition (409): change_status to a status the current one cannot move to;
	// details from, to and allowed (the statuses it can move to).
	KindInvalidTransition = "invalid_transition"
	// KindActivationPrecondition (409): change_status to active for a resource without an
	// organization or a location; details missing (the names of what is missing).
	KindActivationPrecondition = "activation_precondition"
	// KindPolicyAlreadyAdded (409): add_policy for a policy already attached.
	KindPolicyAlreadyAdded = "policy_already_added"
	// KindPolicyNotFound (409): remove_policy for a policy not attached.
	KindPolicyNotFound = "policy_not_found"
	// KindRuleViolated (409): a rule of the domain without a kind of its own.
	KindRuleViolated = "rule_violated"
)

// Kinds of a command refused for what it claims or for the command id it carries. Nothing was
// written.
const (
	// KindCommandIDReused (409): the command id was already used for another request (another
	// command, or the same command with other fields) on the same resource; Field is
	// command_id. The first request's outcome stands. Send the new request with a new command id.
	KindCommandIDReused = "command_id_reused"
	// KindHostnameTaken (409): register with a hostname that another resource that is not
	// decommissioned has (compared in its canonical, lower-case form); Field is hostname,
	// details holder_id (the holder's aggregate id) and hostname. The refusal is not recorded:
	// once the holder is decommissioned the same command, even with the same command id, may
	// succeed.
	KindHostnameTaken = "hostname_taken"
	// KindAssetTagTaken (409): assign_asset_tag with an asset tag that another resource that is
	// not decommissioned carries (compared ignoring case); Field is asset_tag, details holder_id and
	// asset_tag. The refusal is not recorded: once the holder is decommissioned or re-tagged the
	// same command, even with the same command id, may succeed.
	KindAssetTagTaken = "asset_tag_taken"
	// KindConcurrency (409): other writers changed the resource each time the service tried to
	// write, until its retries ran out; details expected and actual (stream sequences). Send
	// the command again.
	KindConcurrency = "concurrency"
)

// Kinds of a request the service could not serve now. Send it again, with the same command id.
const (
	// KindUnavailable (503): the store did not answer in time; the command may have been
	// written (a re-send with the same command id then answers "duplicate"). From the query
	// service's trace: one of the events could not be read from the stream.
	KindUnavailable = "unavailable"
	// KindDeadlineExceeded (503): the request's HeaderDeadline had passed before the command's
	// events could be written. Nothing was written; sending it again, with the same command id
	// and a new deadline, is safe.
	KindDeadlineExceeded = "deadline_exceeded"
	// KindShuttingDown (503): the instance is stopping; the request was not processed.
	KindShuttingDown = "shutting_down"
	// KindOverloaded (503): the instance has its -max-in-flight requests in progress; the
	// request was not processed.
	KindOverloaded = "overloaded"
	// KindBehind (503): a query of the query service whose min_sequence the instance's model
	// had not applied when the wait ended; details applied and min_sequence.
	KindBehind = "behind"
)

// Kinds of the *Error a Client builds itself when a request got no reply from the service.
// They wrap the nats.go or context error that caused them and are safe to retry with the same
// command_id (see Retryable). They differ in what is known.
const (
	// KindNoResponders (503): no instance of the service was subscribed; the command was not
	// applied.
	KindNoResponders = "no_responders"
	// KindTimeout (503): no reply in time; the command may or may not have been applied.
	KindTimeout = "timeout"
	// KindDisconnected (503): the connection was lost or closed before the reply; the command
	// may or may not have been applied.
	KindDisconnected = "disconnected"
)

// KindInternal (500): a fault of the service (a bug); the message says what.
const KindInternal = "internal"
