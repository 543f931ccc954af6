package demo

import (
	"fmt"
	"time"
)

// The catalog JANs of the example policy (policy/testdata/chain-default.yaml).
const (
	sevenStarsCarton = "4901234000100" // ¥6,000, 10 packs
	sevenStarsPack   = "4901234000018" // ¥600
	onigiri          = "4901234200012" // ¥200
	icedCoffee       = "4901234200029" // ¥300
)

// item is one barcode scanned qty times.
type item struct {
	jan string
	qty int
}

// wallet describes the account behind a customer's payment QR, as the
// wallet backend signs it into the PG1 token (or an EMV card).
type wallet struct {
	account      string
	accountAge   time.Duration // account created this long before the sale
	deviceAge    time.Duration // this phone bound to the account this long ago
	topUpAgo     time.Duration // 0: no recent top-up
	topUpAmount  int64
	foreignLogin bool
	emvPAN       string // pays with an EMV consumer-presented QR instead of PG1
}

// step is one customer at one register, or an HQ action.
type step struct {
	after    time.Duration // scenario time since the previous step
	store    string        // "": the first store, s1
	register string
	who      string
	items    []item
	pay      wallet
	replayOf string // scan the QR of this earlier step again (a screenshot)
	label    string // fraud | legit, what really happened
	// denylist, when set, is an HQ action instead of a sale: these accounts
	// are flagged after their owners reported them stolen.
	denylist []string
	// resolve, when set, is a manager's action at the store display
	// instead of a sale: the held sale of that earlier step is resolved.
	resolve string
	action  string // approve | reject
	note    string
	// chain, when set, is a sale HQ's chain rule of that id acts on: the
	// player waits for the automatic denylist entry to reach every
	// register, as the next customer would.
	chain string
}

// till is the register key of the step's sale ("s1/r1").
func (st step) till() string {
	if st.store == "" {
		return tillKey(storeID, st.register)
	}
	return tillKey(st.store, st.register)
}

var (
	regular = func(acct string) wallet {
		return wallet{account: acct, accountAge: 400 * 24 * time.Hour, deviceAge: 200 * 24 * time.Hour}
	}
	// A reserve account of the crew, taken over two days before and left
	// alone since: old, a phone bound two days ago, no fresh top-up, logins
	// through a domestic proxy. To any one store it looks like a regular.
	reserve = func(acct string) wallet {
		return wallet{account: acct, accountAge: 300 * 24 * time.Hour, deviceAge: 50 * time.Hour}
	}
	// A taken-over account: old, but a phone bound minutes ago after a
	// password reset from abroad, topped up with the victim's card.
	takenOver = func(acct string, topUpAgo time.Duration, amount int64) wallet {
		return wallet{account: acct, accountAge: 300 * 24 * time.Hour, deviceAge: 10 * time.Minute,
			topUpAgo: topUpAgo, topUpAmount: amount, foreignLogin: true}
	}
)

// scenario replays the 7pay reports of July 2019 at one store with two
// registers: ordinary shoppers, a regular's two cartons and an office's ten
// (legitimate bulk buyers), the Saitama victim, a ¥100,000 tobacco buy,
// the Shinjuku crew cycling accounts at one till, a replayed QR screenshot,
// HQ's denylist reaching the store, and the crew's reserve accounts moving
// to a second store, where HQ's chain rule crew-hopping (account_stores)
// denylists each as it pays there and the store refuses its cartons.
func scenario() []step {
	s := []step{
		{register: "r1", who: "office worker: onigiri and coffee", label: "legit",
			items: []item{{onigiri, 2}, {icedCoffee, 1}}, pay: regular("acct-tanaka")},
		{after: 2 * time.Minute, register: "r2", who: "student, just topped up ¥3,000: lunch", label: "legit",
			items: []item{{onigiri, 1}, {icedCoffee, 1}},
			pay:   wallet{account: "acct-suzuki", accountAge: 90 * 24 * time.Hour, deviceAge: 90 * 24 * time.Hour, topUpAgo: 5 * time.Minute, topUpAmount: 3000}},
		{after: time.Minute, register: "r2", who: "regular smoker: two cartons", label: "legit",
			items: []item{{sevenStarsCarton, 2}}, pay: regular("acct-sato")},
		{after: time.Minute, register: "r1", who: "card holder paying by EMV QR", label: "legit",
			items: []item{{onigiri, 1}}, pay: wallet{account: "emv", emvPAN: "5413330089020011"}},
		// A legitimate bulk buyer: held for a manager, not refused. Left
		// open for whoever watches the display (with --keep, approve it).
		{after: time.Minute, register: "r2", who: "office manager: the monthly order, 10 cartons", label: "legit",
			items: []item{{sevenStarsCarton, 10}},
			pay:   wallet{account: "acct-office-kanda", accountAge: 3 * 365 * 24 * time.Hour, deviceAge: 400 * 24 * time.Hour}},
		// The crew's runner on a phone bound minutes ago, no top-up, no
		// foreign login: enough signals to hold, not to refuse.
		{after: time.Minute, register: "r1", who: "crew runner, phone bound 10 min ago: three cartons", label: "fraud",
			items: []item{{sevenStarsCarton, 3}},
			pay:   wallet{account: "acct-runner", accountAge: 300 * 24 * time.Hour, deviceAge: 10 * time.Minute}},
		{after: 30 * time.Second, resolve: "crew runner, phone bound 10 min ago: three cartons", action: "reject",
			note: "manager at the back-office display rejects the runner's held sale (PIN)"},
	}
	// The Shinjuku crew: 8 taken-over accounts in a row, two cartons
	// each, while other stolen accounts shop too. Halfway through the crew
	// moves to the other till; the registers share their sales, so the
	// store counts every account.
	crew := func(i int, after time.Duration) step {
		st := step{after: after, register: "r1", label: "fraud", who: crewStep(i),
			items: []item{{sevenStarsCarton, 2}}, pay: takenOver(crewAccount(i), 30*time.Minute, 15000)}
		if i >= 5 {
			st.register = "r2"
			if i == 5 {
				st.who = "crew, account 5 of 8, moves to the other till: two cartons"
			}
		}
		return st
	}
	s = append(s,
		crew(1, 2*time.Minute),
		crew(2, 90*time.Second),
		step{after: time.Minute, register: "r1", who: "Saitama victim: ¥90,000 top-up 40 min ago, ¥90,400 of tobacco", label: "fraud",
			items: []item{{sevenStarsCarton, 15}, {onigiri, 2}}, pay: takenOver("acct-victim-saitama", 40*time.Minute, 90000)},
		step{after: 2 * time.Minute, register: "r2", who: "¥100,200 of tobacco at once", label: "fraud",
			items: []item{{sevenStarsCarton, 16}, {sevenStarsPack, 7}}, pay: takenOver("acct-bulk", 20*time.Minute, 100000)},
	)
	for i := 3; i <= 8; i++ {
		s = append(s, crew(i, 90*time.Second))
	}
	s = append(s,
		step{after: time.Minute, register: "r2", who: "screenshot of the office worker's QR, at the other till", label: "fraud",
			items: []item{{icedCoffee, 1}}, replayOf: "office worker: onigiri and coffee"},
		step{after: 2 * time.Minute, denylist: crewAccounts(),
			note: "HQ: the crew's 8 accounts are reported stolen and denylisted"},
		step{after: time.Minute, register: "r2", who: "crew, account 2 again at the other till: one pack", label: "fraud",
			items: []item{{sevenStarsPack, 1}}, pay: takenOver(crewAccount(2), 45*time.Minute, 15000)},
		step{after: time.Minute, register: "r2", who: "office worker, next day's coffee", label: "legit",
			items: []item{{icedCoffee, 1}}, pay: regular("acct-tanaka")},
	)
	// The crew's reserve accounts: a test buy at s1, too small for any
	// rule, then to s2 in the next street. The first sale at s2 is the
	// account's second store within half an hour: HQ's chain rule denylists
	// it everywhere, and s2 refuses the cartons that come next — which,
	// from an account like this, s2 alone would have allowed.
	s = append(s,
		step{after: 2 * time.Minute, register: "r1", who: "crew, reserve account 9: test buy, onigiri", label: "fraud",
			items: []item{{onigiri, 1}}, pay: reserve(crewAccount(9))},
		step{after: time.Minute, register: "r2", who: "crew, reserve account 10: test buy, iced coffee", label: "fraud",
			items: []item{{icedCoffee, 1}}, pay: reserve(crewAccount(10))},
	)
	for _, i := range []int{9, 10} {
		s = append(s,
			step{after: 5 * time.Minute, store: store2, register: "r1", label: "fraud", chain: "crew-hopping",
				who:   fmt.Sprintf("crew moves to store s2, account %d: onigiri", i),
				items: []item{{onigiri, 1}}, pay: reserve(crewAccount(i))},
			step{after: time.Minute, store: store2, register: "r1", label: "fraud",
				who:   fmt.Sprintf("crew, account %d at s2: two cartons", i),
				items: []item{{sevenStarsCarton, 2}}, pay: reserve(crewAccount(i))},
		)
	}
	return s
}

func crewStep(i int) string { return "crew, account " + string(rune('0'+i)) + " of 8: two cartons" }

func crewAccount(i int) string { return fmt.Sprintf("acct-crew-%d", i) }

func crewAccounts() []string {
	var out []string
	for i := 1; i <= 8; i++ {
		out = append(out, crewAccount(i))
	}
	return out
}
