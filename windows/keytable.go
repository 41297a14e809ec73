package windows

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"unsafe"
)

// keyTable maps encoded group keys to key numbers, small integers that
// index the assigner's per-key state V, which the table holds beside each
// key. It replaces a map[string]*V on the hot path of Assign:
//
//   - A lookup hashes the key once and probes an open-addressing index
//     (linear probing, at most 3/4 full, no tombstones) of
//     8-byte entries, each holding 32 bits of the key's hash, so a probe
//     compares key bytes only when the hashes agree. Keys of up to
//     inlineKey bytes (most encoded keys) are held in the key's own record,
//     next to V: the compare and the state cost one cache line.
//   - Nothing is allocated per key in the steady state: a removed key's
//     number, record and V (with whatever capacity V's slices have) are
//     reused by the next new key, and longer keys go into one arena.
//   - Records hold no pointers unless V does, so the garbage collector
//     does not trace the keys.
//
// Key numbers are reused, so anything that refers to a key across calls
// that may remove it carries the key's generation (gen), which changes
// every time the number is freed.
type keyTable[V any] struct {
	seed  maphash.Seed
	index []uint64 // 0: empty; else hash<<32 | (number+1); linear probing
	mask  uint32   // len(index)-1
	recs  []keyRec[V]
	free  []int32 // numbers of removed keys, reused last in first out
	arena []byte  // keys longer than inlineKey
	dead  int     // arena bytes of removed keys
	live  int     // keys in the table
	bytes int64   // the bytes of the keys in the table
	sink  uint32  // keeps prefetching loads alive
}

// inlineKey is the longest key held in its record.
const inlineKey = 16

// keyRec is one key's record: 24 bytes and V. The key's hash is not
// kept: it is recomputed in the rare calls that need it (remove, rehash).
type keyRec[V any] struct {
	n   uint32          // key length
	gen uint32          // odd while the number is in use; changes when it is freed
	b   [inlineKey]byte // the key, or for a longer one its offset in the arena
	v   V
}

func (r *keyRec[V]) used() bool { return r.gen&1 != 0 }

func newKeyTable[V any]() keyTable[V] {
	return keyTable[V]{seed: maphash.MakeSeed()}
}

func (t *keyTable[V]) hash(key []byte) uint32 {
	return uint32(maphash.Bytes(t.seed, key) >> 32)
}

// bytesOf returns the key of record r. It stays valid and unchanged until
// the next insert: inline keys point into the record.
func (t *keyTable[V]) bytesOf(r *keyRec[V]) []byte {
	if r.n <= inlineKey {
		return r.b[:r.n:r.n]
	}
	off := binary.LittleEndian.Uint64(r.b[:8])
	return t.arena[off : off+uint64(r.n) : off+uint64(r.n)]
}

// key returns key number kn's bytes; see bytesOf.
func (t *keyTable[V]) key(kn int32) []byte { return t.bytesOf(&t.recs[kn]) }

// find returns the number of key, or -1, and the key's hash. It is
// findHash with the hash computed, written out so that the lookup loop of
// Assign makes one call per key.
func (t *keyTable[V]) find(key []byte) (int32, uint32) {
	h := t.hash(key)
	if t.live == 0 {
		return -1, h
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.index[i]
		if e == 0 {
			return -1, h
		}
		if uint32(e>>32) != h {
			continue
		}
		kn := int32(uint32(e)) - 1
		r := &t.recs[kn]
		if r.n == uint32(len(key)) && string(t.bytesOf(r)) == string(key) {
			return kn, h
		}
	}
}

// findHash returns the number of key, whose hash is h, or -1.
func (t *keyTable[V]) findHash(key []byte, h uint32) int32 {
	if t.live == 0 {
		return -1
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.index[i]
		if e == 0 {
			return -1
		}
		if uint32(e>>32) != h {
			continue
		}
		kn := int32(uint32(e)) - 1
		r := &t.recs[kn]
		if r.n == uint32(len(key)) && string(t.bytesOf(r)) == string(key) {
			return kn
		}
	}
}

// at returns key number kn's state. The pointer is good until the next
// insert, which may move the records.
func (t *keyTable[V]) at(kn int32) *V { return &t.recs[kn].v }

// gen returns key number kn's generation.
func (t *keyTable[V]) gen(kn int32) uint32 { return t.recs[kn].gen }

// valid reports whether kn names a key in the table whose generation is
// gen.
func (t *keyTable[V]) valid(kn int32, gen uint32) bool {
	return kn >= 0 && int(kn) < len(t.recs) && t.recs[kn].gen == gen && gen&1 != 0
}

// insert adds key, which is not in the table, with hash h (from find) and
// returns its number. Its state is a reused V: the caller sets every
// field it relies on (slices may keep their capacity).
func (t *keyTable[V]) insert(key []byte, h uint32) int32 {
	if (t.live+1)*4 > len(t.index)*3 {
		t.rehash(max(64, 2*len(t.index)))
	}
	if len(key) > inlineKey && t.dead > 4096 && t.dead > len(t.arena)/2 {
		// Before the new record is in use: compact reads the records in
		// use, and this one's bytes are still its last key's.
		t.compact()
	}
	var kn int32
	if n := len(t.free); n > 0 {
		kn = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		kn = int32(len(t.recs))
		t.recs = append(t.recs, keyRec[V]{})
	}
	r := &t.recs[kn]
	r.n = uint32(len(key))
	r.gen++ // odd: in use
	if len(key) <= inlineKey {
		copy(r.b[:], key)
	} else {
		binary.LittleEndian.PutUint64(r.b[:8], uint64(len(t.arena)))
		t.arena = append(t.arena, key...)
	}
	t.place(h, kn)
	t.live++
	t.bytes += int64(len(key))
	return kn
}

// place files number kn under hash h in the index.
func (t *keyTable[V]) place(h uint32, kn int32) {
	i := h & t.mask
	for t.index[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.index[i] = uint64(h)<<32 | uint64(kn+1)
}

func (t *keyTable[V]) rehash(n int) {
	t.index = make([]uint64, n)
	t.mask = uint32(n - 1)
	for kn := range t.recs {
		if r := &t.recs[kn]; r.used() {
			t.place(t.hash(t.bytesOf(r)), int32(kn))
		}
	}
}

// remove takes key number kn out of the table; its number and record are
// reused by a later insert. Index entries after it in its probe run move
// back (no tombstones), so lookups stay as short as the table is full.
func (t *keyTable[V]) remove(kn int32) {
	t.removeHash(kn, t.hash(t.key(kn)))
}

// removeAll removes the keys numbered kns, in order. Per chunk it hashes
// the keys and loads their index entries first, so that the cache misses
// of the index overlap (as lookUp does), then removes them. Numbers not
// in use are skipped: kns may name a key twice.
func (t *keyTable[V]) removeAll(kns []int32, hashes *[]uint32) {
	for lo := 0; lo < len(kns); lo += assignChunk {
		chunk := kns[lo:min(lo+assignChunk, len(kns))]
		hs := resize(hashes, len(chunk))
		var sink uint64
		for i, kn := range chunk {
			if !t.recs[kn].used() {
				continue // named twice: removed by an earlier chunk
			}
			h := t.hash(t.key(kn))
			hs[i] = h
			sink += t.index[h&t.mask]
		}
		t.sink += uint32(sink)
		for i, kn := range chunk {
			if t.recs[kn].used() {
				t.removeHash(kn, hs[i])
			}
		}
	}
}

// removeHash is remove, given the key's hash h.
func (t *keyTable[V]) removeHash(kn int32, h uint32) {
	r := &t.recs[kn]
	if !r.used() {
		panic(fmt.Sprintf("windows: key number %d removed twice", kn))
	}
	want := uint64(h)<<32 | uint64(kn+1)
	i := h & t.mask
	for t.index[i] != want {
		if t.index[i] == 0 {
			panic(fmt.Sprintf("windows: key number %d missing from the index", kn))
		}
		i = (i + 1) & t.mask
	}
	for j := i; ; {
		j = (j + 1) & t.mask
		e := t.index[j]
		if e == 0 {
			break
		}
		// e may move back to i unless its home lies in (i, j].
		if home := uint32(e>>32) & t.mask; (j-home)&t.mask >= (j-i)&t.mask {
			t.index[i] = e
			i = j
		}
	}
	t.index[i] = 0
	if r.n > inlineKey {
		t.dead += int(r.n)
	}
	t.live--
	t.bytes -= int64(r.n)
	r.gen++ // even: free
	t.free = append(t.free, kn)
}

// compact copies the keys in the arena into a new one. The old arena is
// left as it was, so keys handed out before stay valid.
func (t *keyTable[V]) compact() {
	live := len(t.arena) - t.dead
	arena := make([]byte, 0, live+live/2)
	for kn := range t.recs {
		r := &t.recs[kn]
		if !r.used() || r.n <= inlineKey {
			continue
		}
		b := t.bytesOf(r)
		binary.LittleEndian.PutUint64(r.b[:8], uint64(len(arena)))
		arena = append(arena, b...)
	}
	t.arena, t.dead = arena, 0
}

// assignChunk is how many events Assign looks up at a time before it
// assigns them: enough lookups to overlap their cache misses, few enough
// that what they bring into the cache is still there when the events are
// assigned.
const assignChunk = 256

// lookUp finds the numbers of keys (noKey for those not in the table)
// into l.found, and the hashes of those not found into l.hash. A run of
// one key (common when a producer batches by user) is looked up once.
func lookUp[V any](t *keyTable[V], keys [][]byte, l *lookup) {
	found := resize(&l.found, len(keys))
	hash := resize(&l.hash, len(keys))
	var prev []byte
	kn, h := noKey, uint32(0)
	missing := 0
	for i, key := range keys {
		if i == 0 || string(key) != string(prev) {
			if kn, h = t.find(key); kn == noKey {
				missing++
			}
		}
		found[i], hash[i] = kn, h
		prev = key
	}
	// New keys will take the records on top of the free list: load them
	// too.
	var sink byte
	for j := len(t.free) - 1; j >= 0 && j >= len(t.free)-missing; j-- {
		sink += touch(unsafe.Pointer(&t.recs[t.free[j]]), unsafe.Sizeof(t.recs[0]))
	}
	t.sink += uint32(sink)
}

// lookup is the scratch of lookUp: per key of a chunk, its number and,
// if it was not found, its hash.
type lookup struct {
	found []int32
	hash  []uint32
}

// touch reads a byte of every cache line of the size bytes at p, so that
// a loop of touches brings memory in with its misses overlapped. (Go has
// no prefetch instruction.)
func touch(p unsafe.Pointer, size uintptr) byte {
	var b byte
	for off := uintptr(0); off < size; off += 64 {
		b += *(*byte)(unsafe.Add(p, off))
	}
	return b + *(*byte)(unsafe.Add(p, size-1))
}

// len returns the number of keys in the table.
func (t *keyTable[V]) len() int { return t.live }

// each calls f with every key's number, in increasing order.
func (t *keyTable[V]) each(f func(kn int32)) {
	for kn := range t.recs {
		if t.recs[kn].used() {
			f(int32(kn))
		}
	}
}

// keyRecOverhead is a key's record beyond V, and its share of the index
// (which is at most 3/4 full).
const keyRecOverhead = int64(unsafe.Sizeof(keyRec[struct{}]{})) + 8*4/3
