// expect: 6:21 `script { … }` runs Groovy
pipeline {
    agent any
    stages {
        stage('Build') {
            steps { script { def x = 1 } }
        }
    }
}
