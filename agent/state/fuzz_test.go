package state

import "testing"

// FuzzDecodeSale feeds history entries as a damaged file could hold them.
func FuzzDecodeSale(f *testing.F) {
	f.Add(historyKey(nanos(t0), 1), []byte(`{"a":"acct-1","s":"shinjuku-01","r":"r2","o":"allow","c":[{"k":"tobacco","q":10,"m":54000}]}`))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		sl, _, _, err := decodeSale(k, v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a reason")
			}
			return
		}
		if sl.account == "" || sl.at != historyKeyTime(k) {
			t.Fatalf("accepted a sale without account or with the wrong time: %+v", sl)
		}
		sl.match(nil)
		sl.match([]string{"tobacco"})
	})
}
