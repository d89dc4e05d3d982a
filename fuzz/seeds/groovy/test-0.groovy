
def total = 0
for (i in 1..4) { total += i }
echo "total ${total}"
int n = 0
while (n < 3) { n++ }
for (int i = 0; i < 2; i++) { n = n * 10 }
echo "n=$n"
def grade = total > 5 ? 'big' : 'small'
echo grade
def missing = null
echo(missing ?: 'fallback')
echo "${missing?.size()}"
echo "${7 / 2} ${7.intdiv(2)} ${2 ** 10} ${-7 % 3} ${1.5 * 2}"
echo "${'b' in ['a', 'b']} ${3 in 1..2} ${'x' !in ['y']}"
if (total == 10 && !(n < 0)) { echo 'and' } else if (n) { echo 'no' } else { echo 'never' }
def (a, b) = [1, 'two']
echo "$a $b"
switch (grade) {
  case ['tiny', 'small']: echo 'small case'; break
  case 'big': echo 'big case'
  case 'fall': echo 'fell through'; break
  default: echo 'default'
}
