package windows

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

// unsafeSlice reinterprets a []arrow.Timestamp as []int64 (same layout).
func unsafeSlice(v *[]arrow.Timestamp) unsafe.Pointer { return unsafe.Pointer(v) }
