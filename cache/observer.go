package cache

import (
	"context"
	"errors"
	"time"
)

// Op names an operation, for observers.
type Op string

const (
	OpGet    Op = "get"
	OpExists Op = "exists"
	OpSet    Op = "set"
	OpDelete Op = "delete"
	// OpGetMany counts one GetMany, whatever the number of keys; its
	// outcome is hit when any key was found.
	OpGetMany Op = "get_many"
	// OpEntry is GetEntry.
	OpEntry      Op = "entry"
	OpIncrement  Op = "increment"
	OpExpire     Op = "expire"
	OpSetMany    Op = "set_many"
	OpDeleteMany Op = "delete_many"
	// OpInvalidateTags counts one InvalidateTags, whatever the number of
	// tags; its outcome is hit when it deleted any key.
	OpInvalidateTags Op = "invalidate_tags"
	// OpFetch is Fetch: hit, lease_granted, waited_hit (the value arrived
	// while it waited), pending (it waited in vain, or could not wait).
	OpFetch Op = "fetch"
)

// Ops lists every Op, for observers that resolve their labels up front.
var Ops = []Op{OpGet, OpGetMany, OpExists, OpSet, OpDelete, OpEntry, OpIncrement, OpExpire, OpSetMany, OpDeleteMany, OpInvalidateTags, OpFetch}

// Outcome is what an operation came to, for observers.
type Outcome string

const (
	// OutcomeHit: get found a value, exists found the key, delete removed it.
	OutcomeHit Outcome = "hit"
	// OutcomeMiss: get or exists found nothing, delete had nothing to remove.
	OutcomeMiss Outcome = "miss"
	// OutcomeStored: set was confirmed.
	OutcomeStored Outcome = "stored"
	// OutcomeNotStored: a set or delete was not confirmed (Redis
	// unavailable, no reply, or rejected).
	OutcomeNotStored Outcome = "not_stored"
	// OutcomeUnavailable: a read Redis could not answer (unavailable or no
	// reply) and no fallback answered.
	OutcomeUnavailable Outcome = "unavailable"
	// OutcomeError: a read Redis refused (for example a key of another
	// type), or a value too large to return.
	OutcomeError Outcome = "error"
	// OutcomeConditionNotMet: a conditional write was refused by its
	// condition.
	OutcomeConditionNotMet Outcome = "condition_not_met"
	// OutcomeLeaseGranted: Fetch missed and gave this caller the lease.
	OutcomeLeaseGranted Outcome = "lease_granted"
	// OutcomeWaitedHit: Fetch missed, waited, and the holder's value came.
	OutcomeWaitedHit Outcome = "waited_hit"
	// OutcomePending: Fetch missed while another caller held the lease,
	// and the value did not come within the wait.
	OutcomePending Outcome = "pending"
	// OutcomeLeaseInvalid: a write with a lease was refused (the lease had
	// expired or been revoked): a stale write prevented.
	OutcomeLeaseInvalid Outcome = "lease_invalid"
	// OutcomeInvalid: the input was refused before anything was sent.
	OutcomeInvalid Outcome = "invalid"
	// OutcomeCanceled: the caller went away (a client disconnected)
	// before Redis answered; nothing is known about Redis from it.
	OutcomeCanceled Outcome = "canceled"
)

// Observer receives what the client does, for metrics. Its methods are
// called on the request path and by the monitor: they must be fast and
// safe for concurrent use.
type Observer interface {
	// ObserveOperation reports one Get, Exists, Set or Delete. backend is
	// empty when neither Redis nor the fallback answered.
	ObserveOperation(op Op, outcome Outcome, backend Backend, took time.Duration)
	// ObserveTransition reports a change of availability status.
	ObserveTransition(from, to Status)
	// ObserveReconnectAttempt reports an attempt to reach Redis while it
	// is (or is believed) down.
	ObserveReconnectAttempt()
	// ObserveProbe reports one health probe and its round trip.
	ObserveProbe(took time.Duration, err error)
	// ObserveConnectionReset reports a connection to Redis that the server
	// or the network closed under the client (valkey-go reconnects).
	ObserveConnectionReset()
}

type nopObserver struct{}

func (nopObserver) ObserveOperation(Op, Outcome, Backend, time.Duration) {}
func (nopObserver) ObserveTransition(Status, Status)                     {}
func (nopObserver) ObserveReconnectAttempt()                             {}
func (nopObserver) ObserveProbe(time.Duration, error)                    {}
func (nopObserver) ObserveConnectionReset()                              {}

func readOutcome(found bool, err error) Outcome {
	switch {
	case err == nil && found:
		return OutcomeHit
	case err == nil:
		return OutcomeMiss
	}
	return failureOutcome(err, OutcomeUnavailable)
}

func writeOutcome(err error) Outcome {
	if err == nil {
		return OutcomeStored
	}
	return failureOutcome(err, OutcomeNotStored)
}

func deleteOutcome(deleted bool, err error) Outcome {
	if err != nil {
		return failureOutcome(err, OutcomeNotStored)
	}
	return readOutcome(deleted, nil)
}

// failureOutcome maps an error to an outcome; redisFailure is what a Redis
// problem counts as for this kind of operation.
func failureOutcome(err error, redisFailure Outcome) Outcome {
	switch {
	case errors.Is(err, ErrInvalidInput):
		return OutcomeInvalid
	case errors.Is(err, ErrConditionNotMet):
		return OutcomeConditionNotMet
	case errors.Is(err, ErrLeaseInvalid):
		return OutcomeLeaseInvalid
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	case (errors.Is(err, ErrRejected) || errors.Is(err, ErrValueTooLarge)) && redisFailure == OutcomeUnavailable:
		return OutcomeError
	}
	return redisFailure
}
