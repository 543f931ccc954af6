// Package gen makes a labelled, synthetic but realistic data set for
// backtests: a store chain's QR payments over some days, as the events
// JSONL HQ exports (`posguard policy test --events`), and the ground truth
// per account as the labels file HQ's cases API exports (`--labels`).
//
// Three populations pay, as in July 2019 (docs/DESIGN.md, "Why it
// exists"):
//   - ordinary customers: mostly food and drinks, smokers a pack or now and
//     then a carton; they top up when their balance runs out (often at the
//     till minutes before paying), a few get a new phone, open an account,
//     or come back from abroad during the period;
//   - legitimate bulk buyers: offices buying 10 cartons, bar owners buying
//     a few each week, regulars buying two, from old accounts on old
//     devices, balance topped up days before, domestic logins;
//   - account-takeover crews: accounts taken over (some of them our own
//     customers'), bound to the crew's phone minutes to hours before, most
//     logged in from abroad, topped up with a stolen card within the hour
//     and spent on tobacco and e-cigarette cartons; a crew uses 7–8
//     accounts in a row at one store, walking between its tills; lone
//     victims are drained in one sale (the Saitama ¥90,000 top-up); attacks
//     peak in a wave a few days in, as in 7pay's first four days.
//
// The registers of 2019 had no guard: every sale is recorded as allowed
// by the policy "no-guard-2019". Events carry no label (registers never
// set one); the labels file says fraud (with the case and the takeover
// time) or legit for every account that paid. The same Config gives
// byte-identical output.
package gen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/posguard/posguard/event"
	"github.com/posguard/posguard/policy"
)

// Config says what to generate.
type Config struct {
	// Seed makes the run: the same Config writes the same bytes.
	Seed uint64
	// Start is the first day (its date in Zone counts); Days how many.
	Start time.Time
	Days  int
	// Stores and RegistersPerStore size the chain.
	Stores            int
	RegistersPerStore int
	// SalesPerStoreDay is the mean number of ordinary customers' QR sales
	// per store and day (default 120).
	SalesPerStoreDay int
	// Progress, when set, is called after each day with the days done.
	Progress func(done, days int)
}

// Zone is the stores' time zone: sale times are written in it.
var Zone = time.FixedZone("JST", 9*3600)

// Recorded is the policy the events say decided every sale: none did.
var Recorded = policy.PolicyRef{Name: "no-guard-2019", Version: 1}

// Issuer is the wallet issuer of the generated tokens, the test issuer of
// policy/testdata/chain-default.yaml.
const Issuer = "posguard-wallet-test"

// Limits of a Config, so a typing mistake does not fill a disk.
const (
	MaxDays              = 366
	MaxStores            = 20_000
	MaxRegistersPerStore = 20
	MaxSalesPerStoreDay  = 5_000
)

// Stats counts what was generated.
type Stats struct {
	Sales       int   `json:"sales"`
	FraudSales  int   `json:"fraudSales"`
	FraudAmount int64 `json:"fraudAmount"`
	LegitAmount int64 `json:"legitAmount"`
	// BulkSales are the legitimate bulk buyers' sales.
	BulkSales int `json:"bulkSales"`
	// Accounts paid; FraudAccounts were taken over, Stolen of them were
	// our own customers' (their earlier sales are theirs).
	Accounts      int `json:"accounts"`
	FraudAccounts int `json:"fraudAccounts"`
	Stolen        int `json:"stolen"`
	// CrewVisits are a crew's runs of accounts at one store; Lone the
	// victims drained in one sale.
	CrewVisits int `json:"crewVisits"`
	Lone       int `json:"lone"`
}

func (c *Config) check() error {
	var errs []error
	if c.Days < 1 || c.Days > MaxDays {
		errs = append(errs, fmt.Errorf("days %d: want 1 to %d", c.Days, MaxDays))
	}
	if c.Stores < 1 || c.Stores > MaxStores {
		errs = append(errs, fmt.Errorf("stores %d: want 1 to %d", c.Stores, MaxStores))
	}
	if c.RegistersPerStore < 1 || c.RegistersPerStore > MaxRegistersPerStore {
		errs = append(errs, fmt.Errorf("registers per store %d: want 1 to %d", c.RegistersPerStore, MaxRegistersPerStore))
	}
	if c.SalesPerStoreDay == 0 {
		c.SalesPerStoreDay = 120
	}
	if c.SalesPerStoreDay < 1 || c.SalesPerStoreDay > MaxSalesPerStoreDay {
		errs = append(errs, fmt.Errorf("sales per store and day %d: want 1 to %d", c.SalesPerStoreDay, MaxSalesPerStoreDay))
	}
	if c.Start.IsZero() {
		errs = append(errs, errors.New("start is required"))
	}
	return errors.Join(errs...)
}

// Generate writes the events (JSON lines, in time order) to events and,
// when labels is not nil, the ground truth (one line per account that
// paid, in account order) to labels.
func Generate(ctx context.Context, cfg Config, events, labels io.Writer) (Stats, error) {
	if err := cfg.check(); err != nil {
		return Stats{}, fmt.Errorf("generate events: %w", err)
	}
	g := newGenerator(cfg)
	w := bufio.NewWriterSize(events, 1<<16)
	for day := range cfg.Days {
		if err := ctx.Err(); err != nil {
			return g.stats, fmt.Errorf("generate events: %w", err)
		}
		if err := g.day(w, day); err != nil {
			return g.stats, err
		}
		if cfg.Progress != nil {
			cfg.Progress(day+1, cfg.Days)
		}
	}
	if err := w.Flush(); err != nil {
		return g.stats, fmt.Errorf("write events: %w", err)
	}
	g.stats.Accounts = len(g.paid)
	if labels != nil {
		if err := g.writeLabels(labels); err != nil {
			return g.stats, err
		}
	}
	return g.stats, nil
}

// item is a catalog item of policy/testdata/chain-default.yaml (or one it
// does not know: category unknown).
type item struct {
	jan      string
	category string
	price    int64
}

var (
	sevenStarsPack   = item{"4901234000018", "tobacco", 600}
	meviusPack       = item{"4901234000025", "tobacco", 580}
	heatPack         = item{"4901234000308", "e-cigarette", 580}
	sevenStarsCarton = item{"4901234000100", "tobacco-carton", 6000}
	meviusCarton     = item{"4901234000209", "tobacco-carton", 5800}
	heatCarton       = item{"4901234000315", "e-cigarette", 5800}
	onigiri          = item{"4901234200012", "food", 200}
	coffee           = item{"4901234200029", "drink", 300}
	gum              = item{"49123456", "food", 120}
	bento            = item{"4988888000014", "unknown", 550} // not in the catalog
	newspaper        = item{"4910000000015", "unknown", 150}

	groceries = []item{onigiri, onigiri, coffee, coffee, gum, bento, newspaper}
	packs     = []item{sevenStarsPack, meviusPack, heatPack}
	cartons   = []item{sevenStarsCarton, meviusCarton}
)

// account is one wallet account and what its tokens say.
type account struct {
	key          string
	since        time.Time // "as"
	device       string
	deviceSince  time.Time // "ds"
	topUpAt      time.Time // "ta"
	topUpAmount  int64     // "tm"
	balance      int64
	foreignUntil time.Time // "fl" true for sales before it
	foreignFrom  time.Time
	// A customer who gets a new phone during the period pays with it
	// from newDeviceAt on.
	newDevice   string
	newDeviceAt time.Time

	kind     int // customer, bulk or fraud
	smoker   int // customers: 0 none, 1 packs, 2 cartons now and then, 3 heat sticks
	autoPlan bool

	stolenAt time.Time // taken over: the owner pays no more from then
	caseID   string
	paid     bool
	lastPaid time.Time
}

const (
	kindCustomer = iota
	kindBulk
	kindFraud
)

// intent is a sale to be made: its payment is built when its turn comes,
// in time order, so balances and top-ups follow one another.
type intent struct {
	at       time.Time
	store    int
	register int
	acct     *account
	lines    []policy.Line
	// fraud sales carry their token claims, fixed when planned
	fraud bool
	pay   policy.Payment
}

type store struct {
	id        string
	epochs    []string
	seq       []uint64
	customers []*account
	bulk      []*bulkBuyer
}

type bulkBuyer struct {
	acct  *account
	every int // days between purchases
	next  int // day of the next purchase
	min   int // cartons
	max   int
	from  int // hours of the day
	to    int
}

type generator struct {
	cfg    Config
	rng    *rand.Rand
	start  time.Time
	stores []*store
	keys   map[string]*account
	paid   []*account
	cases  int
	stats  Stats
	// later holds sales planned for after the day being written (a crew
	// that goes on past midnight): the file stays in time order.
	later []intent
	// waveFrom and waveTo are the days of the attack wave.
	waveFrom, waveTo int
}

func newGenerator(cfg Config) *generator {
	y, m, d := cfg.Start.In(Zone).Date()
	g := &generator{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x7a1f2019)),
		start: time.Date(y, m, d, 0, 0, 0, 0, Zone),
		keys:  map[string]*account{},
	}
	g.waveFrom = min(2, cfg.Days-1)
	g.waveTo = min(g.waveFrom+3, cfg.Days-1)
	end := g.start.AddDate(0, 0, cfg.Days)
	for s := range cfg.Stores {
		st := &store{id: fmt.Sprintf("S%03d", s+1), seq: make([]uint64, cfg.RegistersPerStore)}
		for range cfg.RegistersPerStore {
			st.epochs = append(st.epochs, g.hex(8))
		}
		// Regulars come several times a week: about four customers per
		// daily sale.
		for range 4 * cfg.SalesPerStoreDay {
			st.customers = append(st.customers, g.customer(end))
		}
		for range 2 + g.rng.IntN(3) {
			st.bulk = append(st.bulk, g.bulkBuyer())
		}
		g.stores = append(g.stores, st)
	}
	return g
}

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for range 2 * n {
		b.WriteByte(digits[g.rng.IntN(16)])
	}
	return b.String()
}

func (g *generator) newAccount(kind int) *account {
	for {
		a := &account{key: "acct-" + g.hex(6), kind: kind, device: g.hex(8)}
		if _, dup := g.keys[a.key]; !dup {
			g.keys[a.key] = a
			return a
		}
	}
}

// between is a uniform time in [from, to).
func (g *generator) between(from, to time.Time) time.Time {
	d := to.Sub(from)
	if d <= 0 {
		return from
	}
	return from.Add(time.Duration(g.rng.Int64N(int64(d)/int64(time.Second))) * time.Second)
}

func (g *generator) daysAgo(lo, hi int) time.Time {
	return g.between(g.start.AddDate(0, 0, -hi), g.start.AddDate(0, 0, -lo))
}

func (g *generator) customer(end time.Time) *account {
	a := g.newAccount(kindCustomer)
	a.since = g.daysAgo(30, 5*365)
	a.deviceSince = g.between(a.since, g.start.AddDate(0, 0, -20))
	if a.deviceSince.Before(a.since) {
		a.deviceSince = a.since
	}
	a.topUpAt = g.daysAgo(1, 20)
	a.topUpAmount = int64(1+g.rng.IntN(10)) * 1000
	a.balance = g.rng.Int64N(a.topUpAmount + 1)
	a.autoPlan = g.rng.IntN(10) < 3
	switch r := g.rng.IntN(100); {
	case r < 65:
		a.smoker = 0
	case r < 90:
		a.smoker = 1
	case r < 98:
		a.smoker = 2
	default:
		a.smoker = 3
	}
	switch r := g.rng.IntN(1000); {
	case r < 20: // opens the account during the period
		a.since = g.between(g.start, end)
		a.deviceSince = a.since
		a.topUpAt, a.topUpAmount, a.balance = time.Time{}, 0, 0
	case r < 35: // a new phone during the period
		a.newDeviceAt, a.newDevice = g.between(g.start, end), g.hex(8)
	case r < 40: // back from abroad: the wallet saw a foreign login
		a.foreignFrom = g.between(g.start, end)
		a.foreignUntil = a.foreignFrom.Add(24 * time.Hour)
	}
	return a
}

func (g *generator) bulkBuyer() *bulkBuyer {
	a := g.newAccount(kindBulk)
	a.since = g.daysAgo(3*365, 8*365)
	a.deviceSince = g.daysAgo(365, 2*365)
	// Paid in by bank transfer before the month: no fresh top-up.
	a.topUpAt = g.daysAgo(3, 6)
	a.topUpAmount = 200_000
	a.balance = 200_000
	b := &bulkBuyer{acct: a}
	switch g.rng.IntN(3) {
	case 0: // an office: 10 cartons every two weeks, office hours
		b.every, b.min, b.max, b.from, b.to = 14, 10, 10, 10, 16
	case 1: // a snack bar: a few cartons a week, evenings
		b.every, b.min, b.max, b.from, b.to = 7, 3, 5, 17, 22
	default: // a regular: two cartons twice a week
		b.every, b.min, b.max, b.from, b.to = 3, 2, 2, 8, 21
	}
	b.next = g.rng.IntN(b.every)
	return b
}

// hourWeights is when convenience-store customers come: the morning
// commute, lunch, the evening.
var hourWeights = [24]int{2, 1, 1, 1, 1, 2, 5, 9, 9, 6, 5, 6, 10, 9, 5, 5, 6, 8, 9, 8, 6, 5, 4, 3}

func (g *generator) timeOfDay(day time.Time) time.Time {
	total := 0
	for _, w := range hourWeights {
		total += w
	}
	r := g.rng.IntN(total)
	h := 0
	for ; r >= hourWeights[h]; h++ {
		r -= hourWeights[h]
	}
	return day.Add(time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
}

func line(it item, n int) policy.Line {
	return policy.Line{JAN: it.jan, Category: it.category, Quantity: n, UnitPrice: it.price}
}

func (g *generator) pick(items []item) item { return items[g.rng.IntN(len(items))] }

// basket is what an ordinary customer buys.
func (g *generator) basket(a *account) []policy.Line {
	var lines []policy.Line
	for range 1 + g.rng.IntN(3) {
		lines = append(lines, line(g.pick(groceries), 1+g.rng.IntN(2)))
	}
	switch a.smoker {
	case 1:
		if g.rng.IntN(2) == 0 {
			lines = append(lines, line(g.pick(packs), 1+g.rng.IntN(2)))
		}
	case 2:
		if g.rng.IntN(8) == 0 {
			lines = append(lines, line(g.pick(cartons), 1+g.rng.IntN(4)/3))
		} else if g.rng.IntN(2) == 0 {
			lines = append(lines, line(g.pick(packs[:2]), 1+g.rng.IntN(2)))
		}
	case 3:
		if g.rng.IntN(8) == 0 {
			lines = append(lines, line(heatCarton, 1))
		} else {
			lines = append(lines, line(heatPack, 1+g.rng.IntN(2)))
		}
	}
	return lines
}

func amount(lines []policy.Line) int64 {
	var a int64
	for _, l := range lines {
		a += int64(l.Quantity) * l.UnitPrice
	}
	return a
}

// poisson draws a count with mean m (Knuth's method; m is small here).
func (g *generator) poisson(m float64) int {
	if m <= 0 {
		return 0
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (g *generator) day(w io.Writer, d int) error {
	day := g.start.AddDate(0, 0, d)
	var plan []intent
	weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
	for si, st := range g.stores {
		n := float64(g.cfg.SalesPerStoreDay) * (0.9 + 0.2*g.rng.Float64())
		if weekend {
			n *= 0.85
		}
		for range int(n + 0.5) {
			c := st.customers[g.zipf(len(st.customers))]
			if g.rng.IntN(20) == 0 { // a commuter from another store's area
				other := g.stores[g.rng.IntN(len(g.stores))]
				c = other.customers[g.zipf(len(other.customers))]
			}
			plan = append(plan, intent{at: g.timeOfDay(day), store: si, register: g.rng.IntN(g.cfg.RegistersPerStore), acct: c, lines: g.basket(c)})
		}
		for _, b := range st.bulk {
			if d != b.next {
				continue
			}
			if weekend && b.every == 14 {
				b.next++ // offices buy on weekdays
				continue
			}
			b.next = d + b.every - 1 + g.rng.IntN(3)
			at := day.Add(time.Duration(b.from)*time.Hour + time.Duration(g.rng.IntN((b.to-b.from)*3600))*time.Second)
			n := b.min + g.rng.IntN(b.max-b.min+1)
			lines := []policy.Line{line(cartons[0], n/2+n%2)}
			if n/2 > 0 {
				lines = append(lines, line(cartons[1], n/2))
			}
			if g.rng.IntN(3) == 0 {
				lines = append(lines, line(coffee, 1+g.rng.IntN(3)))
			}
			plan = append(plan, intent{at: at, store: si, register: g.rng.IntN(g.cfg.RegistersPerStore), acct: b.acct, lines: lines})
		}
	}
	plan = append(plan, g.attacks(d, day)...)
	plan = append(g.later, plan...)
	g.later = nil

	slices.SortStableFunc(plan, func(a, b intent) int { return a.at.Compare(b.at) })
	end := day.AddDate(0, 0, 1)
	for i := range plan {
		if d < g.cfg.Days-1 && !plan[i].at.Before(end) {
			g.later = append(g.later, plan[i:]...)
			break
		}
		if err := g.write(w, &plan[i]); err != nil {
			return err
		}
	}
	return nil
}

// zipf picks a customer with a skew: regulars come more often.
func (g *generator) zipf(n int) int {
	f := g.rng.Float64()
	return int(f * f * float64(n))
}

// attacks plans the day's takeover crews and lone victims.
func (g *generator) attacks(d int, day time.Time) []intent {
	stores := float64(g.cfg.Stores)
	crews, lone := g.poisson(stores/30), g.poisson(stores/40)
	if d >= g.waveFrom && d <= g.waveTo {
		crews, lone = max(1, int(stores/4+0.5)), max(1, int(stores/10+0.5))
	}
	var plan []intent
	for range crews {
		plan = append(plan, g.crew(day)...)
	}
	for range lone {
		plan = append(plan, g.loneVictim(day))
	}
	return plan
}

// victim is an account taken over at takeover: one of our customers'
// (their later sales stop) or someone's who shops elsewhere.
func (g *generator) victim(takeover time.Time, caseID string) *account {
	var a *account
	if g.rng.IntN(2) == 0 {
		st := g.stores[g.rng.IntN(len(g.stores))]
		c := st.customers[g.rng.IntN(len(st.customers))]
		// Not one whose sales after the takeover are already written.
		if c.stolenAt.IsZero() && c.since.Before(takeover) && c.lastPaid.Before(takeover) {
			a = c
			g.stats.Stolen++
		}
	}
	if a == nil {
		a = g.newAccount(kindCustomer)
		a.since = g.between(takeover.AddDate(-6, 0, 0), takeover.AddDate(0, -2, 0))
	}
	a.stolenAt = takeover
	a.caseID = caseID
	g.stats.FraudAccounts++
	return a
}

func (g *generator) newCase(day time.Time) string {
	g.cases++
	return fmt.Sprintf("C-%s-%04d", day.Format("20060102"), g.cases)
}

// fraudPay is the token of a taken-over account at a sale: the crew's
// phone, a top-up with a stolen card shortly before (most of the time
// within the hour), a foreign login for most.
func (g *generator) fraudPay(a *account, at time.Time, device string, deviceSince time.Time, foreign bool, topUp int64) policy.Payment {
	before := time.Duration(5+g.rng.IntN(46)) * time.Minute
	if g.rng.IntN(100) < 15 {
		before = time.Duration(70+g.rng.IntN(230)) * time.Minute
	}
	a.topUpAt, a.topUpAmount = at.Add(-before), topUp
	return policy.Payment{Kind: policy.TokenPG1, Issuer: Issuer, Account: a.key, DeviceID: device,
		DeviceSince: deviceSince, AccountSince: a.since, TopUpAt: a.topUpAt, TopUpAmount: topUp, ForeignLogin: foreign}
}

// crew is one crew's run: 7–8 accounts (3 to 10) in a row at one store,
// a few minutes apart, at one till or walking between them; some accounts
// are used again at a second store later that day.
func (g *generator) crew(day time.Time) []intent {
	caseID := g.newCase(day)
	g.stats.CrewVisits++
	si := g.rng.IntN(len(g.stores))
	at := day.Add(time.Duration(10*3600+g.rng.IntN(13*3600)) * time.Second)
	n := []int{3, 4, 5, 6, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 9, 10}[g.rng.IntN(17)]
	foreignShare := 50 + g.rng.IntN(50) // the crew's proxy: most logins from abroad
	capAware := g.rng.IntN(10) < 4      // keeps to two cartons an account
	goods := cartons
	switch g.rng.IntN(4) {
	case 0:
		goods = []item{heatCarton}
	case 1:
		goods = []item{sevenStarsCarton, heatCarton}
	}
	phones := []string{g.hex(8), g.hex(8)}
	register := g.rng.IntN(g.cfg.RegistersPerStore)
	walks := g.rng.IntN(10) < 3
	var plan []intent
	for i := range n {
		takeover := at.Add(-time.Duration(30+g.rng.IntN(330)) * time.Minute)
		a := g.victim(takeover, caseID)
		device := phones[g.rng.IntN(len(phones))]
		deviceSince := takeover.Add(time.Duration(2+g.rng.IntN(10)) * time.Minute)
		if g.rng.IntN(10) == 0 { // bound days ago: the device rule misses it
			deviceSince = takeover.Add(-time.Duration(2+g.rng.IntN(5)) * 24 * time.Hour)
		}
		foreign := g.rng.IntN(100) < foreignShare
		topUp := []int64{20_000, 30_000, 50_000, 100_000}[g.rng.IntN(4)]
		if g.rng.IntN(20) == 0 {
			topUp = 200_000 // the two arrested tried ¥200,000
		}
		lines := g.spend(goods, topUp, capAware)
		if walks && i%2 == 1 {
			register = (register + 1) % g.cfg.RegistersPerStore
		}
		plan = append(plan, intent{at: at, store: si, register: register, acct: a, lines: lines, fraud: true,
			pay: g.fraudPay(a, at, device, deviceSince, foreign, topUp)})
		if g.rng.IntN(5) == 0 && len(g.stores) > 1 { // again at another store
			later := at.Add(time.Duration(60+g.rng.IntN(120)) * time.Minute)
			other := (si + 1 + g.rng.IntN(len(g.stores)-1)) % len(g.stores)
			topUp2 := []int64{20_000, 30_000, 50_000}[g.rng.IntN(3)]
			plan = append(plan, intent{at: later, store: other, register: g.rng.IntN(g.cfg.RegistersPerStore), acct: a,
				lines: g.spend(goods, topUp2, capAware), fraud: true, pay: g.fraudPay(a, later, device, deviceSince, foreign, topUp2)})
		}
		at = at.Add(time.Duration(120+g.rng.IntN(240)) * time.Second)
	}
	return plan
}

// spend is the cartons a crew buys with topUp: all it can, or, when it
// keeps under the limits it expects, two cartons or one and a few packs
// (under ¥10,000).
func (g *generator) spend(goods []item, topUp int64, capAware bool) []policy.Line {
	it := g.pick(goods)
	n := int(float64(topUp) * (0.85 + 0.15*g.rng.Float64()) / float64(it.price))
	if capAware {
		n = 1 + g.rng.IntN(2)
	}
	n = max(n, 1)
	lines := []policy.Line{line(it, n)}
	if capAware && n == 1 {
		lines = append(lines, line(sevenStarsPack, 3))
	}
	if rest := topUp - int64(n)*it.price; !capAware && rest >= 600 && g.rng.IntN(2) == 0 {
		lines = append(lines, line(sevenStarsPack, int(min(rest/600, 9))))
	}
	return lines
}

// loneVictim is the Saitama pattern: topped up ¥90,000 (¥50,000 to
// ¥100,000), spent on cartons within the hour in one sale.
func (g *generator) loneVictim(day time.Time) intent {
	g.stats.Lone++
	at := g.timeOfDay(day)
	caseID := g.newCase(day)
	a := g.victim(at.Add(-time.Duration(40+g.rng.IntN(200))*time.Minute), caseID)
	topUp := []int64{50_000, 80_000, 90_000, 90_000, 100_000}[g.rng.IntN(5)]
	it := g.pick([]item{sevenStarsCarton, meviusCarton, heatCarton})
	n := int(topUp / it.price)
	lines := []policy.Line{line(it, n), line(onigiri, 1+g.rng.IntN(2))}
	pay := g.fraudPay(a, at, g.hex(8), a.stolenAt.Add(5*time.Minute), g.rng.IntN(100) < 80, topUp)
	// The Saitama sale came 40 minutes after the top-up.
	a.topUpAt = at.Add(-time.Duration(20+g.rng.IntN(35)) * time.Minute)
	pay.TopUpAt = a.topUpAt
	return intent{at: at, store: g.rng.IntN(len(g.stores)), register: g.rng.IntN(g.cfg.RegistersPerStore), acct: a, lines: lines, fraud: true, pay: pay}
}

// payment builds an honest customer's token at the sale: topping up
// first when the balance is short.
func (g *generator) payment(a *account, at time.Time, total int64) policy.Payment {
	if a.balance < total {
		step := int64(1000)
		if a.autoPlan || a.kind == kindBulk {
			step = 10_000
		}
		need := total - a.balance
		topUp := max(((need+step-1)/step)*step, []int64{3000, 5000, 10_000}[g.rng.IntN(3)])
		before := time.Duration(1+g.rng.IntN(15)) * time.Minute // at the till or in the app, just before
		if a.kind == kindBulk {
			before = time.Duration(20+g.rng.IntN(30)) * time.Hour // the day before, by bank transfer
			topUp = max(topUp, 100_000)
		}
		a.topUpAt, a.topUpAmount = at.Add(-before), topUp
		a.balance += topUp
	}
	a.balance -= total
	p := policy.Payment{Kind: policy.TokenPG1, Issuer: Issuer, Account: a.key, DeviceID: a.device,
		DeviceSince: a.deviceSince, AccountSince: a.since, TopUpAt: a.topUpAt, TopUpAmount: a.topUpAmount}
	if !a.newDeviceAt.IsZero() && !at.Before(a.newDeviceAt) {
		p.DeviceID, p.DeviceSince = a.newDevice, a.newDeviceAt
	}
	if !a.foreignFrom.IsZero() && !at.Before(a.foreignFrom) && at.Before(a.foreignUntil) {
		p.ForeignLogin = true
	}
	return p
}

func (g *generator) write(w io.Writer, in *intent) error {
	a := in.acct
	if !in.fraud {
		if !a.stolenAt.IsZero() && !in.at.Before(a.stolenAt) {
			return nil // the owner lost the account
		}
		if in.at.Before(a.since) {
			return nil // not opened yet
		}
	}
	st := g.stores[in.store]
	st.seq[in.register]++
	seq := st.seq[in.register]
	reg := fmt.Sprintf("R%d", in.register+1)
	pay := in.pay
	total := amount(in.lines)
	if !in.fraud {
		pay = g.payment(a, in.at, total)
	}
	pay.TokenID = g.hex(16)
	req := policy.Request{
		SaleID:   fmt.Sprintf("%s-%s-%s-%d", reg, in.at.UTC().Format("20060102T150405"), st.epochs[in.register][:8], seq),
		Store:    st.id,
		Register: reg,
		At:       in.at,
		Lines:    in.lines,
		Payment:  pay,
	}
	d := policy.Decision{Outcome: policy.Allow, Policy: Recorded, Rules: []policy.Fired{}}
	ev := event.Event{ID: event.ID(st.id, reg, st.epochs[in.register], seq), Seq: seq, Type: event.Decision,
		Store: st.id, Register: reg, At: in.at, SaleID: req.SaleID, Request: &req, Decision: &d}
	b, err := event.Marshal(ev)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if !a.paid {
		a.paid = true
		g.paid = append(g.paid, a)
	}
	a.lastPaid = in.at
	g.stats.Sales++
	switch {
	case in.fraud:
		g.stats.FraudSales++
		g.stats.FraudAmount += total
	default:
		g.stats.LegitAmount += total
		if a.kind == kindBulk {
			g.stats.BulkSales++
		}
	}
	return nil
}

func (g *generator) writeLabels(w io.Writer) error {
	accts := slices.Clone(g.paid)
	slices.SortFunc(accts, func(a, b *account) int { return strings.Compare(a.key, b.key) })
	bw := bufio.NewWriter(w)
	for _, a := range accts {
		l := event.AccountLabel{Account: a.key, Label: event.LabelLegit}
		if !a.stolenAt.IsZero() {
			l = event.AccountLabel{Account: a.key, Label: event.LabelFraud, Case: a.caseID, At: a.stolenAt}
		}
		b, err := event.MarshalAccountLabel(l)
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write labels: %w", err)
	}
	return nil
}
