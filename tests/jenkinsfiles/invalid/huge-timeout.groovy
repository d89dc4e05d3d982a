// expect: 5:15 timeout is longer than a year
// Found by the fuzzer: the seconds overflowed (a panic in debug builds, a wrapped value in release).
pipeline {
    agent any
    options { timeout(time: 99999999999999999999999999, unit: 'MINUTES') }
    stages { stage('A') { steps { echo 'a' } } }
}
