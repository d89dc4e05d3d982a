pipeline {
    agent { label 'linux' }
    stages {
        stage('Hello') { steps { echo 'Hello'; sh "echo ${env.BRANCH_NAME}" } }
    }
}
