package cluster

// Exact balanced assignment: the transportation problem
//
//	minimize   Σ_i cost[i][a(i)]
//	subject to |{i : a(i) = j}| = caps[j]  for every cluster j
//
// solved by successive shortest paths in which the only "hub" nodes are the k
// clusters. Points are added one at a time, as in the Hungarian method. A
// point p sitting in cluster a gives the residual edge a→b of cost
// cost[p][b]−cost[p][a] (move p from a to b); for each ordered pair (a, b)
// only the cheapest such move matters, and it is kept in a lazily cleaned
// min-heap. Each new point i is routed along a shortest path
// i→j₁→j₂→…→t, where t is the first cluster with spare capacity, by
// Dijkstra over the k clusters with potentials v (reduced edge cost
// w(a,b)+v[a]−v[b] ≥ 0); the points on the path each move one hop.
//
// Invariant (the dual certificate of optimality for the points added so far,
// with capacities as upper bounds): v[j] ≤ 0, v[j] = 0 for every cluster with
// spare capacity, and every residual edge has a non-negative reduced cost.
// When all n points are in, every cluster is full, so the assignment is
// optimal for the equality-constrained problem too. Per point: O(k) when its
// best cluster (in reduced cost) has room, O(k² + path·k·log n) otherwise.

// BalancedCaps returns the capacities of an exactly balanced split of n points
// into k clusters: ⌈n/k⌉ for the first n%k clusters, ⌊n/k⌋ for the rest.
func BalancedCaps(n, k int) []int {
	if k < 1 || n < 0 {
		panic("cluster: BalancedCaps: need k ≥ 1 and n ≥ 0")
	}
	caps := make([]int, k)
	for j := range caps {
		caps[j] = n / k
		if j < n%k {
			caps[j]++
		}
	}
	return caps
}

// BalancedAssign returns the assignment of n points to k clusters that
// minimizes the total cost Σ cost[i*k+a[i]] subject to cluster j receiving
// exactly caps[j] points. cost is n×k row-major; caps must be non-negative
// and sum to n (it panics otherwise). The result is exact (up to
// floating-point rounding in comparisons of cost sums) and deterministic; ties
// go to lower cluster indices.
func BalancedAssign(cost []float64, n, k int, caps []int) []int {
	if n < 0 || k < 1 || len(cost) != n*k || len(caps) != k {
		panic("cluster: BalancedAssign: cost must be n×k and caps of length k")
	}
	total := 0
	for _, c := range caps {
		if c < 0 {
			panic("cluster: BalancedAssign: negative capacity")
		}
		total += c
	}
	if total != n {
		panic("cluster: BalancedAssign: capacities must sum to n")
	}
	b := newBalancer(cost, n, k, caps)
	for i := range n {
		b.add(i)
	}
	return b.assign
}

// move is a heap entry: moving point p out of the heap's source cluster a
// into its target b costs key = cost[p][b]−cost[p][a].
type move struct {
	key float64
	p   int32
}

func (x move) less(y move) bool { return x.key < y.key || (x.key == y.key && x.p < y.p) }

// moveHeap is a binary min-heap of moves.
type moveHeap []move

func (h *moveHeap) push(x move) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s[i].less(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *moveHeap) pop() {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	*h = s
	h.down(0)
}

func (h moveHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h moveHeap) heapify() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

type balancer struct {
	cost   []float64
	n, k   int
	caps   []int
	used   []int
	assign []int
	v      []float64 // cluster potentials (duals), ≤ 0, 0 where not full
	// heaps[a*k+b]: moves a→b of the points in a; built lazily the first
	// time Dijkstra expands a (only full clusters are expanded), then kept
	// up to date by pushing every point that enters a. Entries whose point
	// has left a are stale and skipped.
	heaps []moveHeap
	built []bool

	// Dijkstra scratch.
	dist  []float64
	done  []bool
	prevA []int // predecessor cluster on the shortest path, −1 for the new point
	prevP []int // point moved along the edge into this cluster
	seen  []int // clusters finalized in the current search
}

func newBalancer(cost []float64, n, k int, caps []int) *balancer {
	assign := make([]int, n)
	for i := range assign {
		assign[i] = -1
	}
	return &balancer{
		cost: cost, n: n, k: k, caps: caps,
		used:   make([]int, k),
		assign: assign,
		v:      make([]float64, k),
		heaps:  make([]moveHeap, k*k),
		built:  make([]bool, k),
		dist:   make([]float64, k),
		done:   make([]bool, k),
		prevA:  make([]int, k),
		prevP:  make([]int, k),
		seen:   make([]int, 0, k),
	}
}

// place records that point p is now in cluster a.
func (b *balancer) place(p, a int) {
	b.assign[p] = a
	if !b.built[a] {
		return
	}
	row := b.cost[p*b.k : (p+1)*b.k]
	for t := range b.k {
		if t != a {
			b.heaps[a*b.k+t].push(move{row[t] - row[a], int32(p)})
		}
	}
}

// build fills the heaps of cluster a from its current members.
func (b *balancer) build(a int) {
	b.built[a] = true
	k := b.k
	for p, c := range b.assign {
		if c != a {
			continue
		}
		row := b.cost[p*k : (p+1)*k]
		for t := range k {
			if t != a {
				b.heaps[a*k+t] = append(b.heaps[a*k+t], move{row[t] - row[a], int32(p)})
			}
		}
	}
	for t := range k {
		b.heaps[a*k+t].heapify()
	}
}

// best returns the cheapest valid move a→t, dropping stale entries.
func (b *balancer) best(a, t int) (move, bool) {
	h := &b.heaps[a*b.k+t]
	for len(*h) > 0 {
		top := (*h)[0]
		if b.assign[top.p] == a {
			return top, true
		}
		h.pop()
	}
	return move{}, false
}

// add routes the new point i along a shortest path to a cluster with room.
func (b *balancer) add(i int) {
	k := b.k
	row := b.cost[i*k : (i+1)*k]
	for j := range k {
		b.dist[j] = row[j] - b.v[j]
		b.done[j] = false
		b.prevA[j] = -1
		b.prevP[j] = i
	}
	b.seen = b.seen[:0]
	t := -1
	for {
		j := -1
		for c := range k {
			if !b.done[c] && (j < 0 || b.dist[c] < b.dist[j]) {
				j = c
			}
		}
		b.done[j] = true
		b.seen = append(b.seen, j)
		if b.used[j] < b.caps[j] {
			t = j
			break
		}
		if !b.built[j] {
			b.build(j)
		}
		dj := b.dist[j] + b.v[j]
		for c := range k {
			if b.done[c] {
				continue
			}
			m, ok := b.best(j, c)
			if !ok {
				continue
			}
			if nd := dj + m.key - b.v[c]; nd < b.dist[c] {
				b.dist[c] = nd
				b.prevA[c] = j
				b.prevP[c] = int(m.p)
			}
		}
	}
	// Potentials: v += min(dist, D) − D; unfinalized clusters have dist ≥ D.
	d := b.dist[t]
	for _, j := range b.seen {
		b.v[j] += b.dist[j] - d
	}
	// Augment: every point on the path moves one hop towards t.
	for c := t; ; {
		a, p := b.prevA[c], b.prevP[c]
		b.place(p, c)
		if a < 0 {
			break
		}
		c = a
	}
	b.used[t]++
}
