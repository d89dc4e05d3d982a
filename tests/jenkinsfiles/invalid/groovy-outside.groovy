// expect: 5:1 annotations such as `@Grab` or `@Library`
// expect: 7:5 `properties` outside `pipeline { … }`: only method definitions
// expect: 9:39 expected a value, found `)`
// expect: 14:1 `node` outside `pipeline { … }`: only method definitions
@Library('shared') _
def version = '1.0'
    properties([disableConcurrentBuilds()])
def helper(String a) { echo a }
def broken(String a = 'x', String b = ) { echo a }
pipeline {
    agent any
    stages { stage('A') { steps { script { helper(version) } } } }
}
node { echo 'scripted' }
