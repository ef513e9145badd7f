package tokenizer

// queue is a binary heap ordered by less, kept as a plain slice so that pushing a value
// does not box it (container/heap takes any).
type queue[T any] struct {
	items []T
	less  func(a, b *T) bool
}

func (q *queue[T]) reset() { q.items = q.items[:0] }

func (q *queue[T]) len() int { return len(q.items) }

func (q *queue[T]) push(v T) {
	q.items = append(q.items, v)
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(&q.items[i], &q.items[p]) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *queue[T]) pop() T {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && q.less(&q.items[r], &q.items[l]) {
			m = r
		}
		if !q.less(&q.items[m], &q.items[i]) {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top
}
