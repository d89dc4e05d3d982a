
def xs = [3, 1, 2]
echo xs.collect { it * 2 }.toString()
echo xs.findAll { it > 1 }.sort().toString()
echo "${xs.find { it > 1 }} ${xs.any { it > 2 }} ${xs.every { it > 2 }} ${xs.sum()} ${xs.max()}"
xs.eachWithIndex { x, i -> echo "$i:$x" }
def m = [name: 'app', tier: 'web']
m.each { k, v -> echo "$k=$v" }
m.each { e -> echo "${e.key}/${e.value}" }
m.extra = 1
m['other'] = 2
echo "${m.size()} ${m.containsKey('extra')} ${m.keySet()} ${m.get('nope', 'dflt')}"
echo m.collectEntries { k, v -> [(k.toUpperCase()): v] }.toString()
echo "${xs.inject(0) { acc, x -> acc + x }} ${[[1, 2], [3]].flatten()} ${(1..3).collect { it }}"
def shared = []
def add = { x -> shared << x }
add(1); add.call(2)
echo shared.toString()
def counter = 0
3.times { counter += it }
echo "$counter ${[1, 2, 3].indexOf(2)} ${[1, 1, 2].unique()} ${['b', 'a'].sort { it }}"
echo "${[a: 1] + [b: 2]} ${[1, 2] + [3]} ${[1, 2, 3] - [2]}"
