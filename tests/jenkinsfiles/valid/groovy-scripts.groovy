#!/usr/bin/env groovy
// Groovy the subset runs: script blocks, expression conditions and computed environment
// values, in the shapes public Jenkinsfiles use them (see docs/JENKINSFILE.md).
pipeline {
    agent any
    parameters {
        booleanParam(name: 'PUBLISH', defaultValue: false, description: 'Publish the image')
        choice(name: 'TARGET', choices: ['staging', 'production'], description: 'Where to')
    }
    environment {
        SHORT_SHA = sh(script: 'git rev-parse --short HEAD', returnStdout: true).trim()
        IMAGE = "registry.example.com/app:" +
            "${env.BUILD_NUMBER}"
        STAMP = 'build-' + env.BUILD_NUMBER
    }
    stages {
        stage('Version') {
            steps {
                script {
                    def raw = readFile('VERSION').trim()
                    def (major, minor) = raw.tokenize('.').collect { it.toInteger() }
                    version = "${major}.${minor + 1}"
                    env.APP_VERSION = version
                    currentBuild.displayName = "#${currentBuild.number} ${version}"
                    if (fileExists('CHANGELOG.md')) {
                        echo 'changelog found'
                    } else {
                        echo "no changelog; previous result: ${currentBuild.previousBuild?.result ?: 'none'}"
                    }
                }
            }
        }
        stage('Test') {
            steps {
                script {
                    def suites = ['unit', 'integration', 'lint']
                    def branches = [:]
                    suites.each { suite ->
                        branches[suite] = {
                            sh "echo running ${suite}"
                        }
                    }
                    parallel branches
                    def status = sh(script: 'test -f missing.txt', returnStatus: true)
                    if (status != 0) {
                        echo "missing.txt is absent (status ${status})"
                    }
                    try {
                        sh 'exit 3'
                    } catch (err) {
                        echo "recovered: ${err.message}"
                    } finally {
                        echo 'cleanup'
                    }
                }
            }
        }
        stage('Publish') {
            when {
                expression { return params.PUBLISH && env.BRANCH_NAME ==~ /(main|release\/.*)/ }
            }
            steps {
                sh "echo publishing ${IMAGE} as ${version}"
            }
        }
        stage('Release') {
            when {
                beforeOptions true
                anyOf {
                    buildingTag()
                    equals expected: 'release', actual: params.TARGET
                    triggeredBy 'TimerTrigger'
                    isRestartedRun()
                }
            }
            steps { echo 'release' }
        }
        stage('Report') {
            when {
                anyOf {
                    expression { currentBuild.result == null || currentBuild.result == 'SUCCESS' }
                    branch 'main'
                }
            }
            steps {
                script {
                    def summary = [version: version, target: params.TARGET]
                    summary.each { k, v -> echo "${k}=${v}" }
                    for (int i = 0; i < 2; i++) {
                        echo "round ${i}"
                    }
                    switch (params.TARGET) {
                        case 'staging':
                            echo 'to staging'
                            break
                        default:
                            echo 'elsewhere'
                    }
                }
            }
        }
    }
}
