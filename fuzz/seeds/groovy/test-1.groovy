
def v = '  Release-1.2.3  '.trim()
echo v.toLowerCase()
echo v.split('-')[1].tokenize('.').join('|')
echo "${v.startsWith('Rel')} ${v.endsWith('3')} ${v.contains('-1.')} ${v.size()} ${v.length()}"
echo v.replace('.', '_').replaceAll(/(\d+)_(\d+)/, '$2+$1')
echo "${v.substring(8)} ${v.substring(0, 3)} ${v.take(3)} ${v.drop(8)} ${v[-1]} ${v[0..2]}"
echo "${'42'.toInteger() + 1} ${''.isEmpty()} ${'a,b,,'.split(',').size()}"
echo '\u0041\101\t|\s|'
echo "${'abc' * 2} ${'x' + 1 + 2}"
