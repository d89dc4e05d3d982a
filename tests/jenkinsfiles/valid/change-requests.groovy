// A multibranch pipeline: reviews on change requests, a deploy from main only.
pipeline {
    agent any
    stages {
        stage('Review') {
            when { changeRequest() }
            steps { sh 'echo "reviewing $CHANGE_ID from $CHANGE_BRANCH"' }
        }
        stage('Into a release') {
            when { changeRequest target: 'release/*', comparator: 'GLOB' }
            steps { echo 'checks for release branches' }
        }
        stage('From us') {
            when {
                allOf {
                    changeRequest fork: ''
                    changeRequest author: '^(ada|grace)$', comparator: 'REGEXP'
                }
            }
            steps { echo 'a maintainer' }
        }
        stage('Deploy') {
            when {
                allOf {
                    branch 'main'
                    not { changeRequest() }
                }
            }
            steps { echo 'deploying' }
        }
    }
}
