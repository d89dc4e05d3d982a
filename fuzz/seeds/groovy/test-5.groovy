
def sha = sh(script: 'git rev-parse HEAD', returnStdout: true).trim()
echo "sha $sha"
def status = sh(script: 'false', returnStatus: true)
echo "status $status"
try {
  sh 'false'
  echo 'not reached'
} catch (err) {
  echo "caught: ${err.message}"
} finally {
  echo 'finally'
}
try {
  error 'custom'
} catch (hudson.AbortException e) {
  echo "abort: ${e.getMessage()}"
}
try {
  throw new IllegalStateException('bad state')
} catch (IllegalArgumentException e) {
  echo 'wrong catch'
} catch (Exception e) {
  echo "generic: $e"
}
dir('sub') { echo 'inside' }
parallel first: { echo 'one' }, second: { echo 'two' }
return sha
