package policy

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// ext.NativeTypes declares sale, its lines and token to the type checker,
// so an expression naming a field that does not exist fails at load. Its
// run-time field reads go through reflection and box every value, which
// costs an allocation per cart line. fieldReader keeps the declared types
// and swaps in plain getters that hand CEL values it can use as they are:
// the cart is a list of *celLine living in the pooled celVars, and a line's
// category is boxed once per policy, not once per sale.
type fieldReader struct{ types.Provider }

func (f fieldReader) FindStructFieldType(structType, field string) (*types.FieldType, bool) {
	ft, ok := f.Provider.FindStructFieldType(structType, field)
	if !ok {
		return nil, false
	}
	var get ref.FieldGetter
	switch structType {
	case "policy.celSale":
		get = getter("sale", field, saleField(field))
	case "policy.celLine":
		get = getter("line", field, lineField(field))
	case "policy.celToken":
		get = getter("token", field, tokenField(field))
	}
	if get == nil {
		return ft, true
	}
	c := *ft
	c.GetFrom = get
	return &c, true
}

// getter adapts a typed field read to CEL's; nil when f is (the field is
// left to the reflective getter: sale.quantities and sale.amounts).
func getter[T any](what, name string, f func(*T) ref.Val) ref.FieldGetter {
	if f == nil {
		return nil
	}
	return func(obj any) (any, error) {
		v, ok := obj.(*T)
		if !ok {
			return nil, fmt.Errorf("%s.%s: read from a %T", what, name, obj)
		}
		return f(v), nil
	}
}

func saleField(name string) (f func(*celSale) ref.Val) {
	switch name {
	case "id":
		f = func(s *celSale) ref.Val { return types.String(s.ID) }
	case "store":
		f = func(s *celSale) ref.Val { return types.String(s.Store) }
	case "register":
		f = func(s *celSale) ref.Val { return types.String(s.Register) }
	case "at":
		f = func(s *celSale) ref.Val { return types.Timestamp{Time: s.At} }
	case "offline":
		f = func(s *celSale) ref.Val { return types.Bool(s.Offline) }
	case "amount":
		f = func(s *celSale) ref.Val { return types.Int(s.Amount) }
	case "quantity":
		f = func(s *celSale) ref.Val { return types.Int(s.Quantity) }
	case "lines":
		f = func(s *celSale) ref.Val { return &s.list }
	}
	return f
}

func lineField(name string) (f func(*celLine) ref.Val) {
	switch name {
	case "jan":
		f = func(l *celLine) ref.Val { return types.String(l.JAN) }
	case "category":
		f = func(l *celLine) ref.Val { return l.category }
	case "quantity":
		f = func(l *celLine) ref.Val { return types.Int(l.Quantity) }
	case "unitPrice":
		f = func(l *celLine) ref.Val { return types.Int(l.UnitPrice) }
	case "amount":
		f = func(l *celLine) ref.Val { return types.Int(l.Amount) }
	case "units":
		f = func(l *celLine) ref.Val { return types.Int(l.Units) }
	}
	return f
}

func tokenField(name string) (f func(*celToken) ref.Val) {
	switch name {
	case "kind":
		f = func(t *celToken) ref.Val { return types.String(t.Kind) }
	case "issuer":
		f = func(t *celToken) ref.Val { return types.String(t.Issuer) }
	case "account":
		f = func(t *celToken) ref.Val { return types.String(t.Account) }
	case "deviceId":
		f = func(t *celToken) ref.Val { return types.String(t.DeviceID) }
	case "deviceSince":
		f = func(t *celToken) ref.Val { return types.Timestamp{Time: t.DeviceSince} }
	case "accountSince":
		f = func(t *celToken) ref.Val { return types.Timestamp{Time: t.AccountSince} }
	case "topUpAt":
		f = func(t *celToken) ref.Val { return types.Timestamp{Time: t.TopUpAt} }
	case "topUpAmount":
		f = func(t *celToken) ref.Val { return types.Int(t.TopUpAmount) }
	case "foreignLogin":
		f = func(t *celToken) ref.Val { return types.Bool(t.ForeignLogin) }
	case "atc":
		f = func(t *celToken) ref.Val { return types.Int(t.ATC) }
	}
	return f
}

var (
	lineType     = types.NewObjectType("policy.celLine")
	lineListType = types.NewListType(lineType)
)

// A *celLine is its own CEL value, so iterating the cart hands out
// pointers into the pooled slice instead of boxing a copy of each line.
func (l *celLine) ConvertToNative(t reflect.Type) (any, error) {
	switch t {
	case reflect.TypeFor[celLine]():
		return *l, nil
	case reflect.TypeFor[*celLine](), reflect.TypeFor[any]():
		return l, nil
	}
	return nil, fmt.Errorf("a cart line cannot become %v", t)
}

func (l *celLine) ConvertToType(t ref.Type) ref.Val {
	if t.TypeName() == lineType.TypeName() {
		return l
	}
	if t == types.TypeType {
		return lineType
	}
	return types.NewErr("a cart line cannot become %s", t.TypeName())
}

func (l *celLine) Equal(other ref.Val) ref.Val {
	o, ok := other.(*celLine)
	if !ok {
		return types.False
	}
	return types.Bool(l.JAN == o.JAN && l.Category == o.Category && l.Quantity == o.Quantity &&
		l.UnitPrice == o.UnitPrice && l.Amount == o.Amount && l.Units == o.Units)
}

func (l *celLine) Type() ref.Type { return lineType }
func (l *celLine) Value() any     { return l }

// lineList is sale.lines: the pooled cart as a CEL list.
type lineList struct{ s *celSale }

var _ traits.Lister = (*lineList)(nil)

func (ll *lineList) line(i int) *celLine { return &ll.s.Lines[i] }

func (ll *lineList) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeFor[[]celLine]() || t == reflect.TypeFor[any]() {
		return ll.s.Lines, nil
	}
	return nil, fmt.Errorf("the cart cannot become %v", t)
}

func (ll *lineList) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.ListType:
		return ll
	case types.TypeType:
		return types.ListType
	}
	return types.NewErr("the cart cannot become %s", t.TypeName())
}

func (ll *lineList) Equal(other ref.Val) ref.Val {
	o, ok := other.(traits.Lister)
	if !ok || o.Size() != ll.Size() {
		return types.False
	}
	for i := range ll.s.Lines {
		if ll.line(i).Equal(o.Get(types.Int(i))) != types.True {
			return types.False
		}
	}
	return types.True
}

func (ll *lineList) Type() ref.Type { return lineListType }
func (ll *lineList) Value() any     { return ll.s.Lines }

// Add builds a new list, as CEL lists are immutable; expressions rarely
// concatenate the cart.
func (ll *lineList) Add(other ref.Val) ref.Val {
	o, ok := other.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(other)
	}
	n := int(o.Size().(types.Int))
	vals := make([]ref.Val, 0, len(ll.s.Lines)+n)
	for i := range ll.s.Lines {
		vals = append(vals, ll.line(i))
	}
	for i := 0; i < n; i++ {
		vals = append(vals, o.Get(types.Int(i)))
	}
	return types.NewRefValList(types.DefaultTypeAdapter, vals)
}

func (ll *lineList) Contains(v ref.Val) ref.Val {
	for i := range ll.s.Lines {
		if ll.line(i).Equal(v) == types.True {
			return types.True
		}
	}
	return types.False
}

func (ll *lineList) Get(index ref.Val) ref.Val {
	i, ok := index.(types.Int)
	if !ok {
		return types.MaybeNoSuchOverloadErr(index)
	}
	if i < 0 || int64(i) >= int64(len(ll.s.Lines)) {
		return types.NewErr("index '%d' out of range in a cart of %d lines", i, len(ll.s.Lines))
	}
	return ll.line(int(i))
}

func (ll *lineList) Size() ref.Val { return types.Int(len(ll.s.Lines)) }

// Fold is how comprehensions (exists, all, map, filter) walk the cart; it
// allocates nothing, unlike Iterator.
func (ll *lineList) Fold(f traits.Folder) {
	for i := range ll.s.Lines {
		if !f.FoldEntry(i, ll.line(i)) {
			return
		}
	}
}

func (ll *lineList) Iterator() traits.Iterator { return &lineIter{ll: ll} }

type lineIter struct {
	ll *lineList
	i  int
}

func (it *lineIter) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("an iterator cannot leave the expression")
}
func (it *lineIter) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("an iterator cannot be converted")
}
func (it *lineIter) Equal(ref.Val) ref.Val { return types.False }
func (it *lineIter) Type() ref.Type        { return types.IteratorType }
func (it *lineIter) Value() any            { return it }
func (it *lineIter) HasNext() ref.Val      { return types.Bool(it.i < len(it.ll.s.Lines)) }
func (it *lineIter) Next() ref.Val {
	if it.i >= len(it.ll.s.Lines) {
		return nil
	}
	it.i++
	return it.ll.line(it.i - 1)
}
