package api_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/registrytest"
)

// Ids of the things a resource is assigned to: UUIDs of other systems.
const (
	orgID     = "0b0f3c6e-6a52-4c8e-9a43-3c1f5d9e2a01"
	siteID    = "7d4e2b19-0c6f-4f7a-8e15-2a9b3c4d5e02"
	ownerID   = "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e03"
	policyID  = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e04"
	conceptID = "e5f6a7b8-c9d0-4e1f-9a2b-3c4d5e6f7a05"
)

// Every command, on one resource. In your program, connect with nats.Connect(url) and build the
// client with api.NewClient(nc); here registrytest runs a registry in the process.
func ExampleClient() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	c := reg.Client()

	r, err := c.Register(ctx, api.Register{Hostname: "web-01.example.com", ResourceType: "virtual_machine"})
	if err != nil {
		log.Fatal(err)
	}
	target := api.Target{AggregateID: r.AggregateID}
	model, serial := "R650", "SN-1"
	replies := []func() (*api.CommandReply, error){
		func() (*api.CommandReply, error) {
			return c.AssignOrganization(ctx, api.AssignOrganization{Target: target, OrganizationID: orgID})
		},
		func() (*api.CommandReply, error) {
			return c.AssignLocation(ctx, api.AssignLocation{Target: target, LocationID: siteID})
		},
		func() (*api.CommandReply, error) {
			return c.AssignOwner(ctx, api.AssignOwner{Target: target, OwnerID: ownerID})
		},
		func() (*api.CommandReply, error) {
			return c.AddPolicy(ctx, api.AddPolicy{Target: target, PolicyID: policyID})
		},
		func() (*api.CommandReply, error) {
			return c.RemovePolicy(ctx, api.RemovePolicy{Target: target, PolicyID: policyID})
		},
		func() (*api.CommandReply, error) {
			return c.AssignAccountConcept(ctx, api.AssignAccountConcept{Target: target, ConceptID: conceptID})
		},
		func() (*api.CommandReply, error) {
			return c.ClearAccountConcept(ctx, api.ClearAccountConcept{Target: target})
		},
		func() (*api.CommandReply, error) {
			return c.SetHardwareDetails(ctx, api.SetHardwareDetails{Target: target, Model: &model, SerialNumber: &serial})
		},
		func() (*api.CommandReply, error) {
			return c.AssignAssetTag(ctx, api.AssignAssetTag{Target: target, AssetTag: "ASSET-0001"})
		},
		func() (*api.CommandReply, error) {
			return c.UpdateMetadata(ctx, api.UpdateMetadata{Target: target, Key: "rack", Value: "r12"})
		},
		func() (*api.CommandReply, error) {
			return c.ChangeStatus(ctx, api.ChangeStatus{Target: target, Status: "active"})
		},
	}
	fmt.Println(r.Events[0].Type)
	for _, send := range replies {
		reply, err := send()
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range reply.Events {
			fmt.Println(e.Type)
		}
	}

	res, err := c.Get(ctx, api.Get{AggregateID: r.AggregateID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Hostname, res.Status, res.Model, res.AssetTag, res.Metadata["rack"])
	// Output:
	// ResourceRegistered
	// OrganizationAssigned
	// LocationAssigned
	// OwnerAssigned
	// PolicyAdded
	// PolicyRemoved
	// AccountConceptAssigned
	// AccountConceptCleared
	// HardwareDetailsSet
	// AssetTagAssigned
	// MetadataUpdated
	// StatusChanged
	// web-01.example.com active R650 ASSET-0001 r12
}

// errorOf drops a reply, keeping its error.
func errorOf[T any](_ T, err error) error { return err }

// Every failure is an *api.Error: its Code says what to do (400 fix the request, 404 no such
// resource, 409 a rule of the domain refused it, 503 send it again with the same command id:
// api.Retryable), its Kind says exactly what happened.
func ExampleError() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx, registrytest.WithClientOptions(api.WithTimeout(200*time.Millisecond)))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	c := reg.Client()
	r, err := c.Register(ctx, api.Register{Hostname: "db-01.example.com", ResourceType: "physical_server"})
	if err != nil {
		log.Fatal(err)
	}
	target := api.Target{AggregateID: r.AggregateID}
	unknown := api.Target{AggregateID: "4f9a0b1c-2d3e-4f5a-8b6c-7d8e9f0a1b2c"}
	if _, err := c.AddPolicy(ctx, api.AddPolicy{Target: target, PolicyID: policyID}); err != nil {
		log.Fatal(err)
	}
	once := api.Target{Envelope: api.Envelope{CommandID: "6c1e8f1a-4b2d-4c3e-9f5a-7b8c9d0e1f2a"}, AggregateID: r.AggregateID}
	if _, err := c.UpdateMetadata(ctx, api.UpdateMetadata{Target: once, Key: "rack", Value: "r1"}); err != nil {
		log.Fatal(err)
	}

	explain := func(what string, err error) {
		var e *api.Error
		if !errors.As(err, &e) {
			fmt.Printf("%s: %v\n", what, err)
			return
		}
		fmt.Printf("%s: %d %s retryable=%v\n", what, e.Code, e.Kind, api.Retryable(err))
	}
	explain("invalid hostname", errorOf(c.Register(ctx, api.Register{Hostname: "-db-", ResourceType: "physical_server"})))
	explain("no resource type", errorOf(c.Register(ctx, api.Register{Hostname: "db-02.example.com"})))
	explain("get an unknown id", errorOf(c.Get(ctx, api.Get{AggregateID: unknown.AggregateID})))
	explain("command on an unknown id", errorOf(c.AssignOwner(ctx, api.AssignOwner{Target: unknown, OwnerID: ownerID})))
	explain("register the id again", errorOf(c.Register(ctx, api.Register{AggregateID: r.AggregateID, Hostname: "db-03.example.com", ResourceType: "physical_server"})))
	taken := errorOf(c.Register(ctx, api.Register{Hostname: "DB-01.example.com", ResourceType: "physical_server"}))
	explain("hostname of another resource", taken)
	if e := (*api.Error)(nil); errors.As(taken, &e) && e.Kind == api.KindHostnameTaken {
		fmt.Println("  held by the first resource:", e.Details["holder_id"] == r.AggregateID)
	}
	explain("activate without a location", errorOf(c.ChangeStatus(ctx, api.ChangeStatus{Target: target, Status: "active"})))
	explain("provisioning to maintenance", errorOf(c.ChangeStatus(ctx, api.ChangeStatus{Target: target, Status: "maintenance"})))
	explain("add the policy again", errorOf(c.AddPolicy(ctx, api.AddPolicy{Target: target, PolicyID: policyID})))
	explain("remove another policy", errorOf(c.RemovePolicy(ctx, api.RemovePolicy{Target: target, PolicyID: conceptID})))
	explain("command id used for another command", errorOf(c.UpdateMetadata(ctx, api.UpdateMetadata{Target: once, Key: "rack", Value: "r2"})))

	reg.PauseServices() // the service does not answer in time
	explain("no reply in time", errorOf(c.Get(ctx, api.Get{AggregateID: r.AggregateID})))
	reg.ResumeServices()

	if _, err := c.ChangeStatus(ctx, api.ChangeStatus{Target: target, Status: "decommissioned"}); err != nil {
		log.Fatal(err)
	}
	explain("command on a decommissioned resource", errorOf(c.UpdateMetadata(ctx, api.UpdateMetadata{Target: target, Key: "rack", Value: "r3"})))
	// Output:
	// invalid hostname: 400 invalid_field retryable=false
	// no resource type: 400 missing_field retryable=false
	// get an unknown id: 404 not_found retryable=false
	// command on an unknown id: 404 not_registered retryable=false
	// register the id again: 409 already_registered retryable=false
	// hostname of another resource: 409 hostname_taken retryable=false
	//   held by the first resource: true
	// activate without a location: 409 activation_precondition retryable=false
	// provisioning to maintenance: 409 invalid_transition retryable=false
	// add the policy again: 409 policy_already_added retryable=false
	// remove another policy: 409 policy_not_found retryable=false
	// command id used for another command: 409 command_id_reused retryable=false
	// no reply in time: 503 timeout retryable=true
	// command on a decommissioned resource: 409 decommissioned retryable=false
}

// A command sent with its own command id can be sent again safely: one that was applied is
// answered from its first application (Duplicate) and writes nothing more. WithRetries makes
// the client do so itself on 503s, with the same id.
func ExampleRetryable() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	impatient, err := api.NewClient(reg.Conn(), api.WithTimeout(200*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	cmd := api.Register{
		Envelope:     api.Envelope{CommandID: "0e7b9c1d-2f3a-4b5c-8d6e-9f0a1b2c3d4e"},
		Hostname:     "app-01.example.com",
		ResourceType: "virtual_machine",
	}

	reg.PauseServices() // the service is slow: the first attempt gets no reply in time
	_, err = impatient.Register(ctx, cmd)
	fmt.Println("first attempt:", err != nil, "retryable:", api.Retryable(err))
	reg.ResumeServices()

	patient, err := api.NewClient(reg.Conn(), api.WithRetries(5))
	if err != nil {
		log.Fatal(err)
	}
	for attempt := 2; attempt <= 3; attempt++ {
		reply, err := patient.Register(ctx, cmd)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("attempt %d: duplicate=%v\n", attempt, reply.Duplicate)
	}
	reply, err := patient.Register(ctx, cmd)
	if err != nil {
		log.Fatal(err)
	}
	events, err := patient.AllHistory(ctx, api.History{AggregateID: reply.AggregateID})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events written:", len(events))
	// Output:
	// first attempt: true retryable: true
	// attempt 2: duplicate=false
	// attempt 3: duplicate=true
	// events written: 1
}

// Read your own write: the query service builds its model from the event stream, a moment
// after the command service wrote it. A query with MinSequence set to a command reply's Version
// waits until the model has that event (or answers 503 behind).
func ExampleConsistency() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	c := reg.Client()
	reply, err := c.Register(ctx, api.Register{Hostname: "cache-01.example.com", ResourceType: "container_host"})
	if err != nil {
		log.Fatal(err)
	}
	page, err := c.List(ctx, api.List{
		Consistency: api.Consistency{MinSequence: reply.Version},
		Filter:      api.Filter{HostnamePrefix: "cache-"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page.Total, page.Resources[0].Hostname, page.AsOfSequence >= reply.Version)
	// Output:
	// 1 cache-01.example.com true
}
