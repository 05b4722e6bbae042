package computeresource

import (
	"fmt"
	"strings"
)

// ResourceType is one of the 33 kinds of infrastructure resource. Its zero value is no
// type; any other value is one of the variables below, so a ResourceType is always valid.
type ResourceType struct {
	name string
}

// Category groups resource types; there are 9.
type Category struct {
	name string
}

// The 9 categories.
var (
	CategoryCompute   = Category{"compute"}
	CategoryNetwork   = Category{"network"}
	CategorySecurity  = Category{"security"}
	CategoryStorage   = Category{"storage"}
	CategoryAppliance = Category{"appliance"}
	CategoryEdge      = Category{"edge"}
	CategoryPower     = Category{"power"}
	CategoryTelecom   = Category{"telecom"}
	CategoryOther     = Category{"other"}
)

// The 33 resource types.
var (
	ResourceTypePhysicalServer       = ResourceType{"physical_server"}
	ResourceTypeVirtualMachine       = ResourceType{"virtual_machine"}
	ResourceTypeContainerHost        = ResourceType{"container_host"}
	ResourceTypeHypervisor           = ResourceType{"hypervisor"}
	ResourceTypeRouter               = ResourceType{"router"}
	ResourceTypeSwitch               = ResourceType{"switch"}
	ResourceTypeLayer3Switch         = ResourceType{"layer3_switch"}
	ResourceTypeAccessPoint          = ResourceType{"access_point"}
	ResourceTypeLoadBalancer         = ResourceType{"load_balancer"}
	ResourceTypeFirewall             = ResourceType{"firewall"}
	ResourceTypeIDS                  = ResourceType{"ids"}
	ResourceTypeVPNGateway           = ResourceType{"vpn_gateway"}
	ResourceTypeWAF                  = ResourceType{"waf"}
	ResourceTypeCamera               = ResourceType{"camera"}
	ResourceTypeStorageArray         = ResourceType{"storage_array"}
	ResourceTypeNAS                  = ResourceType{"nas"}
	ResourceTypeSANSwitch            = ResourceType{"san_switch"}
	ResourceTypeAppliance            = ResourceType{"appliance"}
	ResourceTypeBackupAppliance      = ResourceType{"backup_appliance"}
	ResourceTypeMonitoringAppliance  = ResourceType{"monitoring_appliance"}
	ResourceTypeAuthServer           = ResourceType{"auth_server"}
	ResourceTypeKVM                  = ResourceType{"kvm"}
	ResourceTypeMonitor              = ResourceType{"monitor"}
	ResourceTypeEdgeDevice           = ResourceType{"edge_device"}
	ResourceTypeIoTGateway           = ResourceType{"iot_gateway"}
	ResourceTypeSensor               = ResourceType{"sensor"}
	ResourceTypePDU                  = ResourceType{"pdu"}
	ResourceTypeUPS                  = ResourceType{"ups"}
	ResourceTypeEnvironmentalMonitor = ResourceType{"environmental_monitor"}
	ResourceTypePBX                  = ResourceType{"pbx"}
	ResourceTypeVideoConference      = ResourceType{"video_conference"}
	ResourceTypeOther                = ResourceType{"other"}
	ResourceTypeUnknown              = ResourceType{"unknown"}
)

type resourceTypeInfo struct {
	rt       ResourceType
	category Category
	aliases  []string
}

// resourceTypeTable is the single source of truth: order, category and aliases.
var resourceTypeTable = []resourceTypeInfo{
	{ResourceTypePhysicalServer, CategoryCompute, []string{"server", "bare_metal"}},
	{ResourceTypeVirtualMachine, CategoryCompute, []string{"vm"}},
	{ResourceTypeContainerHost, CategoryCompute, []string{"container"}},
	{ResourceTypeHypervisor, CategoryCompute, []string{"host"}},
	{ResourceTypeRouter, CategoryNetwork, nil},
	{ResourceTypeSwitch, CategoryNetwork, nil},
	{ResourceTypeLayer3Switch, CategoryNetwork, []string{"l3_switch", "multilayer_switch"}},
	{ResourceTypeAccessPoint, CategoryNetwork, []string{"ap", "wap"}},
	{ResourceTypeLoadBalancer, CategoryNetwork, []string{"lb", "balancer"}},
	{ResourceTypeFirewall, CategorySecurity, []string{"fw"}},
	{ResourceTypeIDS, CategorySecurity, []string{"ips", "intrusion_detection"}},
	{ResourceTypeVPNGateway, CategorySecurity, []string{"vpn"}},
	{ResourceTypeWAF, CategorySecurity, []string{"web_firewall"}},
	{ResourceTypeCamera, CategorySecurity, []string{"surveillance", "ip_camera", "cctv"}},
	{ResourceTypeStorageArray, CategoryStorage, []string{"storage"}},
	{ResourceTypeNAS, CategoryStorage, []string{"network_storage"}},
	{ResourceTypeSANSwitch, CategoryStorage, []string{"san"}},
	{ResourceTypeAppliance, CategoryAppliance, nil},
	{ResourceTypeBackupAppliance, CategoryAppliance, []string{"backup"}},
	{ResourceTypeMonitoringAppliance, CategoryAppliance, []string{"monitoring"}},
	{ResourceTypeAuthServer, CategoryAppliance, []string{"authentication", "ldap", "active_directory"}},
	{ResourceTypeKVM, CategoryAppliance, []string{"kvm_switch"}},
	{ResourceTypeMonitor, CategoryAppliance, []string{"display", "screen"}},
	{ResourceTypeEdgeDevice, CategoryEdge, []string{"edge"}},
	{ResourceTypeIoTGateway, CategoryEdge, []string{"iot"}},
	{ResourceTypeSensor, CategoryEdge, nil},
	{ResourceTypePDU, CategoryPower, []string{"power_distribution"}},
	{ResourceTypeUPS, CategoryPower, []string{"battery"}},
	{ResourceTypeEnvironmentalMonitor, CategoryPower, []string{"environmental"}},
	{ResourceTypePBX, CategoryTelecom, []string{"phone_system"}},
	{ResourceTypeVideoConference, CategoryTelecom, []string{"video", "conferencing"}},
	{ResourceTypeOther, CategoryOther, nil},
	{ResourceTypeUnknown, CategoryOther, nil},
}

var (
	resourceTypeByKey   = map[string]ResourceType{} // typeKey(name or alias) -> type
	categoryOf          = map[ResourceType]Category{}
	validResourceTypes  string
	categories          = []Category{CategoryCompute, CategoryNetwork, CategorySecurity, CategoryStorage, CategoryAppliance, CategoryEdge, CategoryPower, CategoryTelecom, CategoryOther}
	validCategoryString string
)

func init() {
	names := make([]string, 0, len(resourceTypeTable))
	for _, info := range resourceTypeTable {
		names = append(names, info.rt.name)
		categoryOf[info.rt] = info.category
		for _, key := range append([]string{info.rt.name}, info.aliases...) {
			if _, dup := resourceTypeByKey[typeKey(key)]; dup {
				panic("computeresource: ambiguous resource type key " + key)
			}
			resourceTypeByKey[typeKey(key)] = info.rt
		}
	}
	validResourceTypes = strings.Join(names, ", ")
	cats := make([]string, len(categories))
	for i, c := range categories {
		cats[i] = c.name
	}
	validCategoryString = strings.Join(cats, ", ")
}

// typeKey folds the spellings people use for the same type: case, surrounding space, and
// the separators '_', '-' and ' ' ("Bare Metal", "bare-metal", "BareMetal", "bare_metal").
func typeKey(s string) string {
	return typeKeySeparators.Replace(strings.ToLower(strings.TrimSpace(s)))
}

// typeKeySeparators drops the separators typeKey folds. A Replacer is safe for concurrent use,
// and building one costs far more than using it: every decoded ResourceRegistered parses its
// type.
var typeKeySeparators = strings.NewReplacer("_", "", "-", "", " ", "")

// ParseResourceType accepts a canonical name or an alias ("vm", "bare_metal", "fw"...),
// case-insensitively, ignoring surrounding space and the separators '_', '-' and ' '.
// Anything else is an error that lists the valid names: unlike upstream, an unrecognised
// string never silently becomes "unknown".
func ParseResourceType(s string) (ResourceType, error) {
	if rt, ok := resourceTypeByKey[typeKey(s)]; ok {
		return rt, nil
	}
	return ResourceType{}, fmt.Errorf("%w: %q is not a resource type; valid types: %s", ErrInvalidResourceType, shorten(s), validResourceTypes)
}

// ResourceTypes returns the 33 resource types in a stable order (grouped by category).
func ResourceTypes() []ResourceType {
	out := make([]ResourceType, len(resourceTypeTable))
	for i, info := range resourceTypeTable {
		out[i] = info.rt
	}
	return out
}

// Aliases returns the alternative input names accepted for rt, without its canonical name.
func (rt ResourceType) Aliases() []string {
	for _, info := range resourceTypeTable {
		if info.rt == rt {
			return append([]string(nil), info.aliases...)
		}
	}
	return nil
}

// Category returns the category of rt (the zero Category for the zero ResourceType).
func (rt ResourceType) Category() Category { return categoryOf[rt] }

// String returns the canonical snake_case name ("" for the zero ResourceType).
func (rt ResourceType) String() string { return rt.name }

// IsZero reports whether rt is the zero ResourceType (no type).
func (rt ResourceType) IsZero() bool { return rt.name == "" }

// MarshalText implements encoding.TextMarshaler; the zero ResourceType is an error.
func (rt ResourceType) MarshalText() ([]byte, error) {
	if rt.name == "" {
		return nil, fmt.Errorf("%w: no resource type", ErrInvalidResourceType)
	}
	return []byte(rt.name), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseResourceType.
func (rt *ResourceType) UnmarshalText(b []byte) (err error) {
	*rt, err = ParseResourceType(string(b))
	return err
}

// Categories returns the 9 categories in a stable order.
func Categories() []Category { return append([]Category(nil), categories...) }

// ParseCategory accepts a category name, case-insensitively.
func ParseCategory(s string) (Category, error) {
	key := strings.ToLower(strings.TrimSpace(s))
	for _, c := range categories {
		if c.name == key {
			return c, nil
		}
	}
	return Category{}, fmt.Errorf("%w: %q is not a category; valid categories: %s", ErrInvalidCategory, shorten(s), validCategoryString)
}

// ResourceTypes returns the resource types of category c.
func (c Category) ResourceTypes() []ResourceType {
	var out []ResourceType
	for _, info := range resourceTypeTable {
		if info.category == c {
			out = append(out, info.rt)
		}
	}
	return out
}

// String returns the category name ("" for the zero Category).
func (c Category) String() string { return c.name }

// MarshalText implements encoding.TextMarshaler; the zero Category is an error.
func (c Category) MarshalText() ([]byte, error) {
	if c.name == "" {
		return nil, fmt.Errorf("%w: no category", ErrInvalidCategory)
	}
	return []byte(c.name), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseCategory.
func (c *Category) UnmarshalText(b []byte) (err error) {
	*c, err = ParseCategory(string(b))
	return err
}
