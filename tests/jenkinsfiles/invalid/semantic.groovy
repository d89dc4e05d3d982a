// expect: 9:9 `BAD$NAME` is not a valid environment name
// expect: 13:9 duplicate stage name `Build`
// expect: 16:13 stage `Both` has more than one of steps, parallel, stages and matrix
// expect: 19:13 `stages` is empty
// expect: 25:21 matrix axis `OS` has no values
pipeline {
    agent any
    environment {
        BAD$NAME = 'x'
    }
    stages {
        stage('Build') { steps { sh 'make' } }
        stage('Build') { steps { sh 'make again' } }
        stage('Both') {
            steps { sh 'a' }
            parallel { stage('P') { steps { sh 'p' } } }
        }
        stage('Empty') {
            stages {
            }
        }
        stage('M') {
            matrix {
                axes {
                    axis { name 'OS'; values }
                }
                stages { stage('In') { steps { sh 'x' } } }
            }
        }
    }
}
