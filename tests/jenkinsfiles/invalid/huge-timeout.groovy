// expect: 6:29 timeout `time` is out of range: at most 2147483647
// expect: 9:23 timeout is longer than a year
// Found by the fuzzer: the seconds overflowed (a panic in debug builds, a wrapped value in release).
pipeline {
    agent any
    options { timeout(time: 99999999999999999999999999, unit: 'MINUTES') }
    stages {
        stage('A') {
            options { timeout(time: 9999999, unit: 'DAYS') }
            steps { echo 'a' }
        }
    }
}
