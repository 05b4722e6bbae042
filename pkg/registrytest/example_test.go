package registrytest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/cim-infra/registry/pkg/api"
	"github.com/cim-infra/registry/pkg/registrytest"
)

// ensureRegistered is a user's tool: it registers the hostnames the registry does not have.
func ensureRegistered(ctx context.Context, c *api.Client, hostnames ...string) (added int, err error) {
	for _, h := range hostnames {
		page, err := c.List(ctx, api.List{Filter: api.Filter{Hostname: h}})
		if err != nil {
			return added, err
		}
		if page.Total > 0 {
			continue
		}
		if _, err := c.Register(ctx, api.Register{Hostname: h, ResourceType: "virtual_machine"}); err != nil {
			return added, err
		}
		added++
	}
	return added, nil
}

// A user's tool against a registry started for it. In a test, registrytest.New(t) does the
// same and stops the registry when the test ends:
//
//	func TestEnsureRegistered(t *testing.T) {
//		t.Parallel()
//		reg := registrytest.New(t)
//		added, err := ensureRegistered(t.Context(), reg.Client(), "web-01.example.com")
//		...
//	}
func ExampleStart() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	added, err := ensureRegistered(ctx, reg.Client(), "web-01.example.com", "web-02.example.com")
	fmt.Println(added, err)

	// What the tool wrote, as the event store holds it.
	page, err := reg.Client().List(ctx, api.List{})
	if err != nil {
		log.Fatal(err)
	}
	loaded, err := reg.Store().Load(ctx, registrytest.ResourceRef(page.Resources[0].ID))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loaded.Events[0].Type)
	// Output:
	// 2 <nil>
	// ResourceRegistered
}

// Preloaded resources: setups run before Start (or New) returns.
func ExampleWithSetup() {
	ctx := context.Background()
	preload := func(ctx context.Context, c *api.Client) error {
		_, err := c.Register(ctx, api.Register{Hostname: "web-01.example.com", ResourceType: "virtual_machine"})
		return err
	}
	reg, err := registrytest.Start(ctx, registrytest.WithSetup(preload))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	// The query service may not have read the preload yet: list from the stream's head.
	head, err := reg.Store().LastSequence(ctx)
	if err != nil {
		log.Fatal(err)
	}
	page, err := reg.Client().List(ctx, api.List{Consistency: api.Consistency{MinSequence: head}})
	if err != nil {
		log.Fatal(err)
	}
	added, err := ensureRegistered(ctx, reg.Client(), "web-01.example.com", "web-02.example.com")
	fmt.Println(page.Total, added, err)
	// Output:
	// 1 1 <nil>
}

// A tool's time-out and retry, against services that stop answering for a while. (The
// client's time-out is short for the example, but not so short that a loaded machine's
// scheduling runs past it once the services answer again.)
func ExampleRegistry_PauseServices() {
	ctx := context.Background()
	reg, err := registrytest.Start(ctx, registrytest.WithClientOptions(api.WithTimeout(time.Second)))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	reg.PauseServices()
	_, err = ensureRegistered(ctx, reg.Client(), "web-01.example.com")
	var e *api.Error
	fmt.Println(errors.As(err, &e) && e.Kind == api.KindTimeout, api.Retryable(err))
	reg.ResumeServices()

	added, err := ensureRegistered(ctx, reg.Client(), "web-01.example.com")
	fmt.Println(added, err)
	// Output:
	// true true
	// 1 <nil>
}
