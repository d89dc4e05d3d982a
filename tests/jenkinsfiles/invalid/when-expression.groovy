// expect: 6:20 `when { expression { … } }` runs Groovy
pipeline {
    agent any
    stages {
        stage('Deploy') {
            when { expression { return env.BRANCH_NAME == 'main' } }
            steps { sh 'make deploy' }
        }
    }
}
