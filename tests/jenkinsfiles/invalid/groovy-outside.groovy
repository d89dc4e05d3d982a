// expect: 3:1 annotations such as `@Library`
// expect: 4:1 `def` declares a Groovy variable
@Library('shared') _
def version = '1.0'
pipeline {
    agent any
    stages { stage('A') { steps { echo 'a' } } }
}
