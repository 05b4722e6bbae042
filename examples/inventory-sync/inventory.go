package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Host is one row of the inventory: a machine as the inventory knows it.
type Host struct {
	Hostname       string
	ResourceType   string
	Status         string // provisioning, active, maintenance; empty: left as it is (provisioning when new)
	OrganizationID string // empty: not assigned
	LocationID     string // empty: not assigned
	AssetTag       string // empty: none
}

// columns are the inventory's columns, in any order; hostname and resource_type are required.
var columns = []string{"hostname", "resource_type", "status", "organization_id", "location_id", "asset_tag"}

// ErrInventory is wrapped by every error of ReadInventory.
var ErrInventory = errors.New("inventory")

// ReadInventory reads a CSV inventory with a header row naming its columns. Hostnames are
// compared without regard to case, as the registry compares them; a hostname listed twice is an
// error.
func ReadInventory(r io.Reader) ([]Host, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInventory, err)
	}
	index := map[string]int{}
	for i, name := range header {
		name = strings.TrimSpace(name)
		if !known(name) {
			return nil, fmt.Errorf("%w: unknown column %q (columns: %s)", ErrInventory, name, strings.Join(columns, ", "))
		}
		index[name] = i
	}
	for _, required := range []string{"hostname", "resource_type"} {
		if _, ok := index[required]; !ok {
			return nil, fmt.Errorf("%w: no %s column", ErrInventory, required)
		}
	}
	var hosts []Host
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return hosts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInventory, err)
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string {
			if i, ok := index[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		h := Host{
			Hostname: field("hostname"), ResourceType: field("resource_type"), Status: field("status"),
			OrganizationID: field("organization_id"), LocationID: field("location_id"), AssetTag: field("asset_tag"),
		}
		if h.Hostname == "" || h.ResourceType == "" {
			return nil, fmt.Errorf("%w: line %d: hostname and resource_type are required", ErrInventory, line)
		}
		key := strings.ToLower(h.Hostname)
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w: line %d: %s is already on line %d", ErrInventory, line, h.Hostname, first)
		}
		seen[key] = line
		hosts = append(hosts, h)
	}
}

func known(column string) bool {
	for _, c := range columns {
		if c == column {
			return true
		}
	}
	return false
}
