// expect: 7:9 unknown option `frobnicate`
// expect: 10:30 unknown step `bat`
// expect: 12:5 unknown section `libraries` in `pipeline`
pipeline {
    agent any
    options {
        frobnicate()
    }
    stages {
        stage('A') { steps { bat 'dir' } }
    }
    libraries { lib('x') }
}
