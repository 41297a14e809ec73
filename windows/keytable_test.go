package windows

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestKeyTableRandom inserts and removes random keys, short and long, in
// chunks the way the assigners do (lookUp, then inserts, then removals
// one at a time or through removeAll), and checks the table against a
// map after every chunk: every key is found with its number and state,
// no other is, and the index is as lookups expect it (checkIndex).
func TestKeyTableRandom(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		tab := newKeyTable[int64]()
		want := map[string]int32{} // key -> number
		universe := 50 + rng.IntN(3000)
		keyOf := func(i int) []byte {
			if i%3 == 0 {
				return fmt.Appendf(nil, "a-rather-long-key-%d", i) // in the arena
			}
			return fmt.Appendf(nil, "k%d", i)
		}
		var look lookup
		var hashes []uint32
		for round := range 300 {
			// Assign: look up a chunk, insert the missing keys.
			keys := make([][]byte, 1+rng.IntN(2*assignChunk))
			for i := range keys {
				keys[i] = keyOf(rng.IntN(universe))
				if i > 0 && rng.IntN(4) == 0 {
					keys[i] = keys[i-1] // runs of one key
				}
			}
			for lo := 0; lo < len(keys); lo += assignChunk {
				chunk := keys[lo:min(lo+assignChunk, len(keys))]
				lookUp(&tab, chunk, &look)
				for j, key := range chunk {
					kn, ok := want[string(key)]
					if got := look.found[j]; got != noKey && (!ok || got != kn) {
						t.Fatalf("seed %d round %d: lookUp(%q) = %d, want %d (present %t)", seed, round, key, got, kn, ok)
					}
					if look.found[j] != noKey {
						continue
					}
					// Missing at the lookup: it may have come since.
					got := tab.findHash(key, look.hash[j])
					if got != noKey {
						if !ok || got != kn {
							t.Fatalf("seed %d round %d: findHash(%q) = %d, want %d (present %t)", seed, round, key, got, kn, ok)
						}
						continue
					}
					if ok {
						t.Fatalf("seed %d round %d: %q (number %d) not found", seed, round, key, kn)
					}
					kn = tab.insert(key, look.hash[j])
					*tab.at(kn) = int64(kn) * 7
					want[string(key)] = kn
				}
			}
			// Advance: remove some keys.
			var gone []int32
			for key, kn := range want {
				if rng.IntN(3) == 0 {
					gone = append(gone, kn)
					delete(want, key)
				}
			}
			if rng.IntN(2) == 0 {
				for _, kn := range gone {
					tab.remove(kn)
				}
			} else {
				if len(gone) > 0 && rng.IntN(2) == 0 {
					gone = append(gone, gone[0]) // named twice
				}
				tab.removeAll(gone, &hashes)
			}
			checkTable(t, &tab, want)
		}
	}
}

// checkTable checks tab holds exactly the keys of want, with their
// numbers and states, and that its index is consistent.
func checkTable(t *testing.T, tab *keyTable[int64], want map[string]int32) {
	t.Helper()
	if tab.len() != len(want) {
		t.Fatalf("table has %d keys, want %d", tab.len(), len(want))
	}
	var bytes int64
	for key, kn := range want {
		bytes += int64(len(key))
		got, _ := tab.find([]byte(key))
		if got != kn || string(tab.key(kn)) != key || *tab.at(kn) != int64(kn)*7 {
			t.Fatalf("find(%q) = %d (key %q, state %d), want %d", key, got, tab.key(kn), *tab.at(kn), kn)
		}
	}
	if tab.bytes != bytes {
		t.Fatalf("table counts %d key bytes, want %d", tab.bytes, bytes)
	}
	if _, h := tab.find([]byte("never-inserted")); tab.findHash([]byte("never-inserted"), h) != noKey {
		t.Fatal("found a key never inserted")
	}
	checkIndex(t, tab)
}

// checkIndex checks the index: one entry per key in use, holding its
// hash, and reachable by a probe from its home (no empty entry between).
func checkIndex(t *testing.T, tab *keyTable[int64]) {
	t.Helper()
	n := 0
	for i, e := range tab.index {
		if e == 0 {
			continue
		}
		n++
		kn := int32(uint32(e)) - 1
		if kn < 0 || int(kn) >= len(tab.recs) || !tab.recs[kn].used() {
			t.Fatalf("index entry %d names key number %d, not in use", i, kn)
		}
		if h := tab.hash(tab.key(kn)); h != uint32(e>>32) {
			t.Fatalf("index entry %d holds hash %#x for key number %d, whose hash is %#x", i, e>>32, kn, h)
		}
		for j := uint32(e>>32) & tab.mask; j != uint32(i); j = (j + 1) & tab.mask {
			if tab.index[j] == 0 {
				t.Fatalf("index entry %d is past an empty entry %d from its home", i, j)
			}
		}
	}
	if n != tab.len() {
		t.Fatalf("index has %d entries for %d keys", n, tab.len())
	}
}
