
def m = 'v1.20.3' =~ /v(\d+)\.(\d+)/
if (m) { echo "major ${m[0][1]} minor ${m[0][2]}" }
echo "${'abc' ==~ /a.c/} ${'abcd' ==~ /a.c/} ${('a1b22' =~ /\d+/).count}"
echo "${'release/2.0'.matches('release/.*')}"
